package containerd

import (
	"errors"
	"net/url"

	"github.com/thicket-edge/thicket/node_engine/logwriter"
)

// logURI is the binary:// log URI of a task whose output goes to file: the
// shim starts the log writer program as `<program> logwriter.Arg <file>`
// (package logwriter), with the task's stdout and stderr on fds 3 and 4.
func logURI(program, file string) (*url.URL, error) {
	if program == "" {
		return nil, errors.New("no log writer program")
	}
	return &url.URL{Scheme: "binary", Path: program, RawQuery: url.Values{logwriter.Arg: {file}}.Encode()}, nil
}
