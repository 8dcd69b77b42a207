// Command thicket is the command-line client of Thicket's root
// orchestrator: log in, apply SLAs, list, scale, follow logs, delete.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/thicket-edge/thicket/cli/internal/commands"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version string

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := commands.Main(ctx, version, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
