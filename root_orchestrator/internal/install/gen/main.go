// Command gen writes scripts/getstarted.sh from the install package's
// templates (go generate ./root_orchestrator/internal/install), or with
// more arguments another script, e.g. for shellcheck:
//
//	go run ./root_orchestrator/internal/install/gen /tmp/worker.sh worker.sh http://root:10000
package main

import (
	"fmt"
	"os"

	"github.com/thicket-edge/thicket/root_orchestrator/internal/install"
)

func main() {
	if len(os.Args) < 2 || len(os.Args) > 4 {
		fmt.Fprintln(os.Stderr, "usage: gen OUTPUT [SCRIPT [ROOT_URL]]")
		os.Exit(2)
	}
	script, rootURL := "getstarted.sh", ""
	if len(os.Args) > 2 {
		script = os.Args[2]
	}
	if len(os.Args) > 3 {
		rootURL = os.Args[3]
	}
	b, err := install.Render(script, rootURL)
	if err == nil {
		err = os.WriteFile(os.Args[1], b, 0o755)
	}
	if err == nil {
		err = os.Chmod(os.Args[1], 0o755) // WriteFile keeps an existing file's mode
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}
