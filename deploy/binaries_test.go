package deploy

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/thicket-edge/thicket/internal/testharness"
)

// repo is the repository's top level, the Go workspace, seen from this
// module's directory (where go test runs).
const repo = ".."

// mainCmds are the binaries of the project, as cmd/ paths in the workspace:
// the four daemons, and the CLI once cli/cmd/thicket exists.
func mainCmds(t testing.TB) []string {
	cmds := []string{
		"root_orchestrator/cmd/thicket-root",
		"cluster_orchestrator/cmd/thicket-cluster",
		"node_engine/cmd/thicket-node",
		"net_manager/cmd/thicket-net",
	}
	if fi, err := os.Stat(filepath.Join(repo, "cli", "cmd", "thicket")); err == nil && fi.IsDir() {
		cmds = append(cmds, "cli/cmd/thicket")
	} else if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return cmds
}

// helperCmds are programs the daemons start, without flags of their own to
// document: built beside mainCmds for the images, not asked for --help.
var helperCmds = []string{"node_engine/cmd/thicket-log-writer"}

var built struct {
	once sync.Once
	bin  *testharness.Bin
	err  error
	help map[string]*helpDoc // binary name -> its --help
}

// binaries builds every binary of mainCmds once per test run, as the
// Dockerfile's builder does (static, CGO_ENABLED=0, -trimpath, stripped), and
// parses each one's --help. TestComposeRun builds the images from them.
func binaries(t *testing.T) map[string]*helpDoc {
	t.Helper()
	cmds := mainCmds(t)
	built.once.Do(func() {
		if built.bin, built.err = testharness.TempBin(); built.err != nil {
			return
		}
		if built.err = built.bin.Build(context.Background(), append(slices.Clone(cmds), helperCmds...)...); built.err != nil {
			return
		}
		built.help = map[string]*helpDoc{}
		for _, c := range cmds {
			name := filepath.Base(c)
			out, err := exec.Command(built.bin.Path(c), "--help").CombinedOutput()
			if err != nil {
				built.err = &buildError{args: []string{name, "--help"}, out: string(out), err: err}
				return
			}
			built.help[name] = parseHelp(string(out))
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	for name, h := range built.help {
		if len(h.Flags) == 0 {
			t.Fatalf("%s --help: no flags found in:\n%s", name, h.Text)
		}
	}
	return built.help
}

// testappBinary is the test image's program, if a test built it: testimage
// keeps it in a directory of its own for the whole process.
var testappBinary string

func TestMain(m *testing.M) {
	code := m.Run()
	if built.bin != nil {
		built.bin.Remove()
	}
	if testappBinary != "" {
		os.RemoveAll(filepath.Dir(testappBinary))
	}
	os.Exit(code)
}

type buildError struct {
	args []string
	out  string
	err  error
}

func (e *buildError) Error() string {
	return strings.Join(e.args, " ") + ": " + e.err.Error() + "\n" + e.out
}

// helpFlag is one flag as kong's --help prints it:
//
//	--data-dir="/var/lib/thicket/root"
//	                     Directory for ... ($THICKET_DATA_DIR).
type helpFlag struct {
	Name    string // without the dashes
	Default string // empty: none (a placeholder such as STRING, or "")
	Env     string // THICKET_..., or empty
	Help    string // the help text without the environment variable
}

type helpDoc struct {
	Text  string
	Flags []helpFlag
	// Envs are all $THICKET_* variables the help names: those of flags
	// and those the description mentions (THICKET_ADMIN_PASSWORD).
	Envs map[string]bool
}

func (h *helpDoc) flag(name string) *helpFlag {
	for i := range h.Flags {
		if h.Flags[i].Name == name {
			return &h.Flags[i]
		}
	}
	return nil
}

var (
	flagLineRE    = regexp.MustCompile(`^(?:-[a-zA-Z], )?--(?:\[no-\])?([a-z0-9][a-z0-9-]*)(?:=(\S+))?\s*(.*)$`)
	placeholderRE = regexp.MustCompile(`^[A-Z][A-Z0-9-]*(?:,\.\.\.)?$`)
	envSuffixRE   = regexp.MustCompile(`\s*\(\$(THICKET_[A-Z0-9_]+)\)\.?$`)
	envMentionRE  = regexp.MustCompile(`\$(THICKET_[A-Z0-9_]+)`)
)

// parseHelp reads the "Flags:" block of kong's help output. Flag lines are
// indented by at most 6 spaces; their wrapped help text by more.
func parseHelp(text string) *helpDoc {
	h := &helpDoc{Text: text, Envs: map[string]bool{}}
	for _, m := range envMentionRE.FindAllStringSubmatch(text, -1) {
		h.Envs[m[1]] = true
	}
	in := false
	var cur *helpFlag
	finish := func() {
		if cur == nil {
			return
		}
		cur.Help = strings.TrimSpace(cur.Help)
		if m := envSuffixRE.FindStringSubmatch(cur.Help); m != nil {
			cur.Env = m[1]
			cur.Help = strings.TrimSpace(cur.Help[:len(cur.Help)-len(m[0])])
			if !strings.HasSuffix(cur.Help, ".") {
				cur.Help += "."
			}
		}
		if cur.Name != "help" {
			h.Flags = append(h.Flags, *cur)
		}
		cur = nil
	}
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if !in {
			in = trimmed == "Flags:"
			continue
		}
		if trimmed == "" || (!strings.HasPrefix(line, " ") && strings.HasSuffix(trimmed, ":")) {
			finish()
			if trimmed != "" {
				break // the next block (Commands:, Arguments:)
			}
			continue
		}
		indent := len(line) - len(strings.TrimLeft(line, " "))
		if m := flagLineRE.FindStringSubmatch(trimmed); m != nil && indent <= 6 {
			finish()
			cur = &helpFlag{Name: m[1], Help: m[3]}
			switch p := m[2]; {
			case strings.HasPrefix(p, `"`):
				if d, err := strconv.Unquote(p); err == nil {
					cur.Default = d
				} else {
					cur.Default = p
				}
			case p != "" && !placeholderRE.MatchString(p):
				cur.Default = p
			}
			continue
		}
		if cur != nil {
			cur.Help += " " + trimmed
		}
	}
	finish()
	return h
}

func TestParseHelp(t *testing.T) {
	h := parseHelp(`Usage: x [flags]

Flags:
  -h, --help                 Show context-sensitive help.
      --socket="/run/x.sock"
                             Unix socket the node engine talks
                             to (thicket-node --net-socket)
                             ($THICKET_NET_SOCKET).
      --underlay=STRING      This node's address
                             --overlay-port wrapped ($THICKET_UNDERLAY).
      --list=LIST,...        A list ($THICKET_LIST).
      --accel=""             Empty default ($THICKET_ACCEL).
      --grace=3s             Grace ($THICKET_GRACE).
      --reset                A switch from $THICKET_PASSWORD.
      --[no-]trim            A switch on by default ($THICKET_TRIM).

Commands:
  login    Log in.
`)
	want := []helpFlag{
		{Name: "socket", Default: "/run/x.sock", Env: "THICKET_NET_SOCKET", Help: "Unix socket the node engine talks to (thicket-node --net-socket)."},
		{Name: "underlay", Env: "THICKET_UNDERLAY", Help: "This node's address --overlay-port wrapped."},
		{Name: "list", Env: "THICKET_LIST", Help: "A list."},
		{Name: "accel", Env: "THICKET_ACCEL", Help: "Empty default."},
		{Name: "grace", Default: "3s", Env: "THICKET_GRACE", Help: "Grace."},
		{Name: "reset", Help: "A switch from $THICKET_PASSWORD."},
		{Name: "trim", Env: "THICKET_TRIM", Help: "A switch on by default."},
	}
	if len(h.Flags) != len(want) {
		t.Fatalf("got %d flags %+v, want %d", len(h.Flags), h.Flags, len(want))
	}
	for i := range want {
		if h.Flags[i] != want[i] {
			t.Errorf("flag %d: got %+v, want %+v", i, h.Flags[i], want[i])
		}
	}
	if !h.Envs["THICKET_PASSWORD"] || !h.Envs["THICKET_GRACE"] || len(h.Envs) != 7 {
		t.Errorf("envs: %v", h.Envs)
	}
}
