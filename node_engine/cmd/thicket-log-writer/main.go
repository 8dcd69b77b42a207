// Command thicket-log-writer writes one instance's output to its log file
// (package logwriter): containerd's shim starts it for each container
// task, the node engine for each virtual machine's console, as
//
//	thicket-log-writer thicket-log-writer <log file>
//
// (the first argument is the key of the binary:// log URI). It is not a
// user command: install it beside thicket-node.
package main

import (
	"fmt"
	"os"

	"github.com/thicket-edge/thicket/node_engine/logwriter"
)

func main() {
	if len(os.Args) != 3 || os.Args[1] != logwriter.Arg {
		fmt.Fprintf(os.Stderr, "usage: %s %s <log file> (started by the node engine or containerd's shim)\n", os.Args[0], logwriter.Arg)
		os.Exit(2)
	}
	if err := logwriter.Run(os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
