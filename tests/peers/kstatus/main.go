// Command kstatus prints what kstatus computes for one Kubernetes object: the
// status library of sigs.k8s.io/cli-utils that Flux (health checks, `wait: true`)
// and kpt judge resources with. It is a test peer of sealant's end-to-end suite
// (tests/tests/gitops_health.rs), built by tests/peers/build.sh.
//
// Input: the JSON of one object on stdin, as `kubectl get -o json` prints it.
// Output: one JSON line, {"status": "<kstatus status>", "message": "<its message>"}.
// `kstatus --version` prints the cli-utils version it was built with.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

const module = "sigs.k8s.io/cli-utils"

func main() {
	if len(os.Args) == 2 && os.Args[1] == "--version" {
		fmt.Printf("kstatus %s %s\n", module, version())
		return
	}
	if len(os.Args) != 1 {
		fail(fmt.Errorf("usage: kstatus < object.json (or kstatus --version)"))
	}
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(fmt.Errorf("read stdin: %w", err))
	}
	var u unstructured.Unstructured
	if err := u.UnmarshalJSON(in); err != nil {
		fail(fmt.Errorf("parse the object: %w", err))
	}
	res, err := status.Compute(&u)
	if err != nil {
		fail(fmt.Errorf("kstatus.Compute: %w", err))
	}
	out, err := json.Marshal(map[string]string{
		"status":  res.Status.String(),
		"message": res.Message,
	})
	if err != nil {
		fail(err)
	}
	fmt.Println(string(out))
}

// version is the cli-utils version in the binary's build information.
func version() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == module {
				return dep.Version
			}
		}
	}
	return "unknown"
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "kstatus:", err)
	os.Exit(1)
}
