// Command argocd-health runs Argo CD's built-in health check for
// bitnami.com/SealedSecret (resource_customizations/bitnami.com/SealedSecret/health.lua
// in the argo-cd Go module) the way Argo CD runs it: in gopher-lua, Argo CD's
// interpreter, at the version Argo CD builds with, with the object as the global
// `obj`. It is a test peer of sealant's end-to-end suite (tests/tests/gitops_health.rs).
//
// tests/peers/build.sh copies health.lua, with Argo CD's own test cases for it
// (health_test.yaml and testdata/), out of the argo-cd module (none of them is in
// sealant's repository) next to this file, embeds them, and sets argoVersion.
//
// Input: the JSON of one SealedSecret on stdin, as `kubectl get -o json` prints it.
// Output: one JSON line, {"status": "<health status>", "message": "<its message>"}.
// `argocd-health --version` prints the argo-cd and gopher-lua versions.
// `argocd-health --argo-tests` prints Argo CD's test files, as one JSON object from
// path to text, so that a test can check this program against them.
package main

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime/debug"
	"time"

	lua "github.com/yuin/gopher-lua"
)

//go:embed health.lua
var script string

//go:embed health_test.yaml testdata
var argoTests embed.FS

// Set at link time by tests/peers/build.sh: the argo-cd module version health.lua
// comes from.
var argoVersion = "unknown"

func main() {
	if len(os.Args) == 2 && os.Args[1] == "--version" {
		fmt.Printf("argocd-health argo-cd %s gopher-lua %s\n", argoVersion, luaVersion())
		return
	}
	if len(os.Args) == 2 && os.Args[1] == "--argo-tests" {
		files := map[string]string{}
		err := fs.WalkDir(argoTests, ".", func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			text, err := argoTests.ReadFile(path)
			files[path] = string(text)
			return err
		})
		if err != nil {
			fail(err)
		}
		out, err := json.Marshal(files)
		if err != nil {
			fail(err)
		}
		fmt.Println(string(out))
		return
	}
	if len(os.Args) != 1 {
		fail(fmt.Errorf("usage: argocd-health < sealedsecret.json (or argocd-health --version)"))
	}
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(fmt.Errorf("read stdin: %w", err))
	}
	obj, err := decodeObject(in)
	if err != nil {
		fail(fmt.Errorf("parse the object: %w", err))
	}
	status, message, err := health(obj)
	if err != nil {
		fail(err)
	}
	out, err := json.Marshal(map[string]string{"status": status, "message": message})
	if err != nil {
		fail(err)
	}
	fmt.Println(string(out))
}

// decodeObject parses JSON as Kubernetes' unstructured decoding does, which is what
// Argo CD hands its Lua VM: integers become int64, other numbers float64.
func decodeObject(in []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(in))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, err
	}
	return numbers(obj).(map[string]any), nil
}

func numbers(v any) any {
	switch t := v.(type) {
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		f, _ := t.Float64()
		return f
	case []any:
		for i := range t {
			t[i] = numbers(t[i])
		}
	case map[string]any:
		for k := range t {
			t[k] = numbers(t[k])
		}
	}
	return v
}

// health is Argo CD's VM.ExecuteHealthLua (util/lua/lua.go): the same libraries
// (package, base, table; the safe os subset is left out, as health.lua for
// SealedSecret does not use os), the same 1 s limit, the same conversion of `obj`,
// and the same reading of the returned table (a status outside Argo CD's set is
// Unknown).
func health(obj map[string]any) (string, string, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, pair := range []struct {
		n string
		f lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(pair.f), NRet: 0, Protect: true}, lua.LString(pair.n)); err != nil {
			return "", "", err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", decodeValue(l, obj))
	if err := l.DoString(script); err != nil {
		return "", "", fmt.Errorf("health.lua: %w", err)
	}
	ret := l.Get(-1)
	table, ok := ret.(*lua.LTable)
	if !ok {
		return "", "", fmt.Errorf("health.lua returned a %s, not a table", ret.Type())
	}
	status := lua.LVAsString(table.RawGetString("status"))
	message := lua.LVAsString(table.RawGetString("message"))
	switch status {
	case "Unknown", "Progressing", "Suspended", "Healthy", "Degraded", "Missing":
	default:
		return "Unknown", "Lua returned an invalid health status", nil
	}
	return status, message, nil
}

// decodeValue is Argo CD's (util/lua/lua.go), which converts an unstructured object
// into Lua values.
func decodeValue(l *lua.LState, value any) lua.LValue {
	switch converted := value.(type) {
	case bool:
		return lua.LBool(converted)
	case float64:
		return lua.LNumber(converted)
	case string:
		return lua.LString(converted)
	case json.Number:
		return lua.LString(converted)
	case int:
		return lua.LNumber(converted)
	case int32:
		return lua.LNumber(converted)
	case int64:
		return lua.LNumber(converted)
	case []any:
		arr := l.CreateTable(len(converted), 0)
		for _, item := range converted {
			arr.Append(decodeValue(l, item))
		}
		return arr
	case map[string]any:
		tbl := l.CreateTable(0, len(converted))
		for key, item := range converted {
			tbl.RawSetH(lua.LString(key), decodeValue(l, item))
		}
		return tbl
	case nil:
		return lua.LNil
	}
	return lua.LNil
}

// luaVersion is the gopher-lua version in the binary's build information.
func luaVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == "github.com/yuin/gopher-lua" {
				return dep.Version
			}
		}
	}
	return "unknown"
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "argocd-health:", err)
	os.Exit(1)
}
