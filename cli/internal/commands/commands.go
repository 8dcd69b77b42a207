// Package commands is the `thicket` command line: its flags and
// subcommands, each a small Run method over the REST client.
package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/alecthomas/kong"
	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/cli/internal/config"
)

// Exit codes.
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
)

// Globals are the flags every command takes.
type Globals struct {
	Server string `env:"THICKET_SERVER" placeholder:"URL" help:"thicket-root URL (default: the server of the last login, else ${default_server})."`
	Config string `env:"THICKET_CONFIG" placeholder:"DIR" help:"Directory of credentials.json (default: $XDG_CONFIG_HOME/thicket, i.e. ~/.config/thicket)."`
	Output string `short:"o" enum:"table,json" default:"table" help:"Output of get, status, apply and events: table or json."`
	CAFile string `name:"ca-file" type:"path" env:"THICKET_CA_FILE" placeholder:"FILE" help:"CA certificate (PEM) the server's certificate must be issued by: thicket-root's <data-dir>/tls/ca.crt (login saves it with the session)."`
	CAPin  string `name:"ca-pin" env:"THICKET_CA_PIN" placeholder:"sha256:HEX" help:"Pin of the CA the server's certificate must be issued by, as thicket-root logs it (login saves it with the session)."`
}

// CLI is the command line.
type CLI struct {
	Globals

	Login     LoginCmd     `cmd:"" help:"Log in and save the session in the config directory."`
	Logout    LogoutCmd    `cmd:"" help:"End the saved session at the server and forget it."`
	Apply     ApplyCmd     `cmd:"" help:"Create the applications of an SLA, start instances and wait until they run."`
	Get       GetCmd       `cmd:"" help:"List applications, services, instances, clusters or nodes."`
	Scale     ScaleCmd     `cmd:"" help:"Add or remove instances of a service until it has N, then wait until they run."`
	Edit      EditCmd      `cmd:"" help:"Change a service's definition (SLA file); its instances are replaced one at a time, and the command waits until they run."`
	Logs      LogsCmd      `cmd:"" help:"Print (or follow) the output of an instance."`
	Events    EventsCmd    `cmd:"" help:"Print what happened to a service's instances (placed, started, exited, restarting, node lost, ...)."`
	Delete    DeleteCmd    `cmd:"" help:"Delete an application (with its services) or a service."`
	Node      NodeCmd      `cmd:"" help:"Cordon, drain or uncordon a node of a cluster (admins)."`
	Status    StatusCmd    `cmd:"" help:"Show the server's health, the session and a summary of what runs."`
	Token     TokenCmd     `cmd:"" aliases:"tokens" help:"List, create and revoke cluster join tokens (admins)."`
	Jobs      JobsCmd      `cmd:"" help:"Show and change a service's job list, shared among its instances."`
	NodeToken NodeTokenCmd `cmd:"" name:"node-token" aliases:"node-tokens" help:"List, create and revoke a cluster's node join tokens (admins)."`
	Quota     QuotaCmd     `cmd:"" help:"Show a user's quota and its use; set it (admins)."`
	AllowFrom AllowFromCmd `cmd:"" name:"allow-from" help:"Show or change who else may connect to a service's instances (tenant isolation)."`
	Version   VersionCmd   `cmd:"" help:"Print the CLI's version."`
}

// Env is what commands run with: the parsed globals, standard streams and
// a context cancelled on Ctrl-C.
type Env struct {
	Ctx     context.Context
	In      io.Reader
	Out     io.Writer
	Err     io.Writer
	Version string
	G       *Globals
}

// usageError is a command line that parsed but makes no sense; exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// exitCode carries kong's exit (after --help) out of Parse.
type exitCode int

// Main runs the command line args and returns the exit code.
func Main(ctx context.Context, version string, args []string, in io.Reader, out, errw io.Writer) (code int) {
	var cli CLI
	env := &Env{Ctx: ctx, In: in, Out: out, Err: errw, Version: version, G: &cli.Globals}
	k, err := kong.New(&cli,
		kong.Name("thicket"),
		kong.Description("Command-line client of Thicket's root orchestrator (thicket-root)."),
		kong.Writers(out, errw),
		kong.Exit(func(c int) { panic(exitCode(c)) }),
		kong.Vars{"default_server": DefaultServer},
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
		kong.Bind(env),
	)
	if err != nil {
		fmt.Fprintln(errw, "thicket:", err)
		return ExitError
	}
	defer func() {
		if r := recover(); r != nil {
			c, ok := r.(exitCode)
			if !ok {
				panic(r)
			}
			code = int(c)
		}
	}()
	kctx, err := k.Parse(args)
	if err != nil {
		fmt.Fprintf(errw, "thicket: %v\nRun 'thicket --help' for usage.\n", err)
		return ExitUsage
	}
	return report(errw, kctx.Run())
}

// report prints a command's error and returns its exit code.
func report(w io.Writer, err error) int {
	var ue *usageError
	var ae *api.StatusError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ue):
		fmt.Fprintf(w, "thicket: %v\nRun 'thicket --help' for usage.\n", err)
		return ExitUsage
	case errors.Is(err, api.ErrNotLoggedIn), errors.Is(err, api.ErrSessionExpired):
		fmt.Fprintf(w, "thicket: %s: run thicket login\n", strings.TrimSpace(err.Error()))
	case errors.As(err, &ae) && ae.Status == 400 && ae.Field != "":
		fields := api.FieldErrors(ae.Message)
		if len(fields) == 1 {
			fmt.Fprintf(w, "thicket: invalid input: %s\n", fields[0])
			break
		}
		fmt.Fprintf(w, "thicket: invalid input (%d errors):\n", len(fields))
		for _, f := range fields {
			fmt.Fprintf(w, "  %s\n", f)
		}
	default:
		fmt.Fprintf(w, "thicket: %s\n", strings.TrimSpace(err.Error()))
		if unknownCA(err) {
			fmt.Fprintln(w, caHint)
		}
	}
	return ExitError
}

// configDir is --config, else the user's config directory.
func (e *Env) configDir() (string, error) {
	if e.G.Config != "" {
		return e.G.Config, nil
	}
	return config.DefaultDir()
}

// client returns a client of the chosen server with the saved session when
// it belongs to that server (none otherwise); renewed sessions are saved.
func (e *Env) client() (*api.Client, error) {
	dir, err := e.configDir()
	if err != nil {
		return nil, err
	}
	creds, err := config.Load(dir)
	if err != nil {
		return nil, err
	}
	server, err := chooseServer(e.G.Server, creds)
	if err != nil {
		return nil, usagef("--server: %v", err)
	}
	var session api.Session
	if creds != nil && creds.Server == server {
		session = creds.Session
	}
	tr, err := e.trust(server, creds)
	if err != nil {
		return nil, err
	}
	cl := api.NewClient(api.Config{Address: server, Session: session, HTTPClient: &http.Client{Timeout: 30 * time.Second},
		CAPEM: []byte(tr.CA), CAPin: tr.CAPin,
		OnSession: func(s api.Session) error {
			return config.Save(dir, &config.Credentials{Server: server, CA: tr.CA, CAPin: tr.CAPin, Session: s})
		},
		// Another thicket command may have refreshed the saved session
		// meanwhile (e.g. while this one follows logs): its refresh token
		// is the one that still works.
		Reload: func() (api.Session, error) {
			creds, err := config.Load(dir)
			if err != nil || creds == nil || creds.Server != server {
				return api.Session{}, err
			}
			return creds.Session, nil
		}})
	return cl, nil
}

// session is client for commands that need a login.
func (e *Env) session() (*api.Client, error) {
	cl, err := e.client()
	if err != nil {
		return nil, err
	}
	if !loggedIn(cl) {
		return nil, fmt.Errorf("not logged in to %s: run thicket login%s", cl.Address(), serverHint(e.G.Server, cl.Address()))
	}
	return cl, nil
}

// newClient returns a client of server, trusting tr's CA, with a 30 s
// timeout per request (e.client's has the same).
func newClient(server string, tr trust, session api.Session, onSession func(api.Session) error) *api.Client {
	return api.NewClient(api.Config{Address: server, Session: session, OnSession: onSession,
		CAPEM: []byte(tr.CA), CAPin: tr.CAPin, HTTPClient: &http.Client{Timeout: 30 * time.Second}})
}

// loggedIn reports whether the client has a saved session.
func loggedIn(cl *api.Client) bool {
	s := cl.Session()
	return s.Token != "" || s.RefreshToken != ""
}

func serverHint(flag, server string) string {
	if flag == "" {
		return ""
	}
	return " --server " + server
}

// chooseServer is --server, else the server of the saved session, else
// the default, as a normalized base URL.
func chooseServer(flag string, creds *config.Credentials) (string, error) {
	switch {
	case flag != "":
		return NormalizeServer(flag)
	case creds != nil && creds.Server != "":
		return NormalizeServer(creds.Server)
	}
	return DefaultServer, nil
}

// json reports whether -o json was asked for.
func (e *Env) json() bool { return e.G.Output == "json" }
