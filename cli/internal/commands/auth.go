package commands

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/thicket-edge/thicket/api"
	"github.com/thicket-edge/thicket/cli/internal/config"
	"golang.org/x/term"
)

// LoginCmd is `thicket login`.
type LoginCmd struct {
	Username      string `short:"u" default:"Admin" help:"User name."`
	Password      string `short:"p" help:"Password (visible to other users in the process list; prefer --password-stdin or the prompt)."`
	PasswordStdin bool   `help:"Read the password from standard input (one line)."`
	PasswordFile  string `type:"path" help:"Read the password from this file (its first line)."`
}

// Run logs in and saves the session.
func (c *LoginCmd) Run(e *Env) error {
	dir, err := e.configDir()
	if err != nil {
		return err
	}
	saved, err := config.Load(dir)
	if err != nil {
		saved = nil // a broken file is replaced by the new login
	}
	server, err := chooseServer(e.G.Server, saved)
	if err != nil {
		return usagef("--server: %v", err)
	}
	pw, err := c.password(e)
	if err != nil {
		return err
	}
	tr, err := e.trust(server, saved)
	if err != nil {
		return err
	}
	cl := newClient(server, tr, api.Session{}, nil)
	session, err := cl.Login(e.Ctx, c.Username, pw)
	var ae *api.StatusError
	if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
		return fmt.Errorf("login to %s failed: %s", server, ae.Message)
	}
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	if err := config.Save(dir, &config.Credentials{Server: server, CA: tr.CA, CAPin: tr.CAPin, Session: session}); err != nil {
		return err
	}
	fmt.Fprintf(e.Out, "Logged in to %s as %s (%s); session saved in %s\n", server, session.Username, session.Role, config.Path(dir))
	return nil
}

func (c *LoginCmd) password(e *Env) (string, error) {
	given := 0
	for _, b := range []bool{c.Password != "", c.PasswordStdin, c.PasswordFile != ""} {
		if b {
			given++
		}
	}
	switch {
	case given > 1:
		return "", usagef("--password, --password-stdin and --password-file exclude each other")
	case c.PasswordFile != "":
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return "", fmt.Errorf("--password-file: %w", err)
		}
		pw, _, _ := strings.Cut(string(b), "\n")
		if pw = strings.TrimSuffix(pw, "\r"); pw == "" {
			return "", usagef("--password-file: %s holds no password", c.PasswordFile)
		}
		return pw, nil
	case c.Password != "":
		return c.Password, nil
	case c.PasswordStdin:
		line, err := bufio.NewReader(e.In).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read the password: %w", err)
		}
		pw := strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if pw == "" {
			return "", usagef("--password-stdin: standard input holds no password")
		}
		return pw, nil
	}
	f, ok := e.In.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", usagef("no password: give --password-stdin or -p, or run in a terminal to be asked")
	}
	fmt.Fprintf(e.Err, "Password for %s: ", c.Username)
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(e.Err)
	if err != nil {
		return "", fmt.Errorf("read the password: %w", err)
	}
	if len(b) == 0 {
		return "", usagef("empty password")
	}
	return string(b), nil
}

// LogoutCmd is `thicket logout`.
type LogoutCmd struct{}

// Run ends the saved session at its root (its tokens stop working there)
// and deletes it. A root that cannot be reached does not keep the session
// saved: it is deleted with a warning that its tokens work until they
// expire.
func (c *LogoutCmd) Run(e *Env) error {
	dir, err := e.configDir()
	if err != nil {
		return err
	}
	if creds, err := config.Load(dir); err == nil && creds != nil && (creds.Token != "" || creds.RefreshToken != "") {
		cl := newClient(creds.Server, trust{CA: creds.CA, CAPin: creds.CAPin}, creds.Session, nil)
		if err := cl.Logout(e.Ctx); err != nil {
			fmt.Fprintf(e.Err, "thicket: warning: could not end the session at %s (%v); its tokens stay valid until they expire\n",
				creds.Server, strings.TrimSpace(err.Error()))
		}
	}
	had, err := config.Remove(dir)
	if err != nil {
		return err
	}
	if had {
		fmt.Fprintln(e.Out, "Logged out.")
	} else {
		fmt.Fprintln(e.Out, "Not logged in.")
	}
	return nil
}
