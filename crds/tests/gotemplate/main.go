// Command gotemplate renders sealant's template known-answer cases with the real Go
// text/template and sprig, configured the way Bitnami's controller configures them, and
// writes the expected results next to the Rust tests.
//
// Regenerate (from the repository root):
//
//	cd crds/tests/gotemplate && go run . < cases.json > ../testdata/template_cases.json
//
// Input: a JSON list of cases {"name", "template", "values", "note"?, "sealant"?}.
// Output: the same list, each case with "expect" set to either {"output": "..."} or
// {"error": "<Go's message>"}. "sealant" is passed through untouched: it records a
// deliberate difference ("error": sealant refuses what Go renders).
//
// Bitnami (pkg/apis/sealedsecrets/v1alpha1/sealedsecret_expansion.go) parses each
// spec.template.data value with template.New(key).Funcs(sprig.GenericFuncMap() minus
// env, expandenv and getHostByName) and executes it with the map of decrypted values
// (map[string]string) as dot, with the default missingkey option.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"text/template"

	"github.com/Masterminds/sprig/v3"
)

type testCase struct {
	Name     string            `json:"name"`
	Note     string            `json:"note,omitempty"`
	Template string            `json:"template"`
	Values   map[string]string `json:"values"`
	Sealant  json.RawMessage   `json:"sealant,omitempty"`
	Expect   *expectation      `json:"expect,omitempty"`
}

type expectation struct {
	Output *string `json:"output,omitempty"`
	Error  *string `json:"error,omitempty"`
}

func funcs() template.FuncMap {
	m := sprig.GenericFuncMap()
	delete(m, "env")
	delete(m, "expandenv")
	delete(m, "getHostByName")
	return m
}

func render(name, text string, values map[string]string) expectation {
	if values == nil {
		values = map[string]string{}
	}
	t, err := template.New(name).Funcs(funcs()).Parse(text)
	if err != nil {
		msg := err.Error()
		return expectation{Error: &msg}
	}
	var out bytes.Buffer
	if err := t.Execute(&out, values); err != nil {
		msg := err.Error()
		return expectation{Error: &msg}
	}
	s := out.String()
	return expectation{Output: &s}
}

func main() {
	var cases []testCase
	dec := json.NewDecoder(os.Stdin)
	if err := dec.Decode(&cases); err != nil {
		fmt.Fprintln(os.Stderr, "cannot read cases:", err)
		os.Exit(1)
	}
	for i := range cases {
		e := render("key", cases[i].Template, cases[i].Values)
		cases[i].Expect = &e
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(cases); err != nil {
		fmt.Fprintln(os.Stderr, "cannot write cases:", err)
		os.Exit(1)
	}
}
