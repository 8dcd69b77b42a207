package deploy

import (
	"bufio"
	"encoding/json"
	"os"
	"path"
	"regexp"
	"strings"
	"testing"
)

// stage is one FROM ... AS name stage of a Dockerfile.
type stage struct {
	Name  string
	From  string // image or earlier stage
	Lines []instruction
}

type instruction struct {
	Cmd  string // upper case: COPY, RUN, USER, ...
	Args string
}

// parseDockerfile reads stages and their instructions, joining lines
// continued with a backslash and dropping comments and the parser
// directives.
func parseDockerfile(t *testing.T, file string) []*stage {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stages []*stage
	var logical string
	sc := bufio.NewScanner(f)
	flush := func() {
		line := strings.TrimSpace(logical)
		logical = ""
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		cmd = strings.ToUpper(cmd)
		args = strings.TrimSpace(args)
		if cmd == "FROM" {
			f := strings.Fields(args)
			for len(f) > 0 && strings.HasPrefix(f[0], "--") {
				f = f[1:]
			}
			st := &stage{From: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.Name = f[2]
			} else if len(f) != 1 {
				t.Fatalf("%s: cannot read %q", file, line)
			}
			stages = append(stages, st)
			return
		}
		if len(stages) == 0 {
			if cmd != "ARG" {
				t.Fatalf("%s: %s before the first FROM", file, cmd)
			}
			return
		}
		s := stages[len(stages)-1]
		s.Lines = append(s.Lines, instruction{Cmd: cmd, Args: args})
	}
	for sc.Scan() {
		line := sc.Text()
		if logical == "" && strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			logical += strings.TrimSuffix(line, `\`) + " "
			continue
		}
		logical += line
		flush()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	flush()
	return stages
}

// chain returns the stage named name and the stages it is built on, the
// named one first; the last one's From is the base image.
func chain(stages []*stage, name string) []*stage {
	byName := map[string]*stage{}
	for _, s := range stages {
		if s.Name != "" {
			byName[s.Name] = s
		}
	}
	var out []*stage
	for s := byName[name]; s != nil && len(out) <= len(stages); s = byName[s.From] {
		out = append(out, s)
	}
	return out
}

// last returns the arguments of the last instruction cmd in the chain
// (the nearest stage wins), or "".
func last(ch []*stage, cmd string) string {
	for _, s := range ch {
		for i := len(s.Lines) - 1; i >= 0; i-- {
			if s.Lines[i].Cmd == cmd {
				return s.Lines[i].Args
			}
		}
	}
	return ""
}

// all returns the arguments of every instruction cmd in the chain.
func all(ch []*stage, cmd string) []string {
	var out []string
	for _, s := range ch {
		for _, in := range s.Lines {
			if in.Cmd == cmd {
				out = append(out, in.Args)
			}
		}
	}
	return out
}

// copyLine is a COPY instruction: --from, --chown, sources and destination.
type copyLine struct {
	From, Chown string
	Srcs        []string
	Dest        string
}

func parseCopy(args string) copyLine {
	var c copyLine
	f := strings.Fields(args)
	for len(f) > 0 && strings.HasPrefix(f[0], "--") {
		k, v, _ := strings.Cut(strings.TrimPrefix(f[0], "--"), "=")
		switch k {
		case "from":
			c.From = v
		case "chown":
			c.Chown = v
		}
		f = f[1:]
	}
	if len(f) >= 2 {
		c.Srcs, c.Dest = f[:len(f)-1], f[len(f)-1]
	}
	return c
}

// entrypoint returns the exec-form ENTRYPOINT of a chain; the shell form
// cannot work in an image without a shell.
func entrypoint(t *testing.T, target string, ch []*stage) []string {
	t.Helper()
	raw := last(ch, "ENTRYPOINT")
	var ep []string
	if err := json.Unmarshal([]byte(raw), &ep); err != nil || len(ep) == 0 {
		t.Fatalf("target %s: ENTRYPOINT %q is not the exec form [\"/path/binary\", ...] (the image has no shell)", target, raw)
	}
	return ep
}

// installedFrom reports which file of stage from the chain's COPY lines put
// at path file, or "".
func installedFrom(ch []*stage, from, file string) string {
	for _, args := range all(ch, "COPY") {
		c := parseCopy(args)
		if c.From != from {
			continue
		}
		for _, src := range c.Srcs {
			switch {
			case strings.HasSuffix(c.Dest, "/") && strings.HasSuffix(src, "/"):
				if strings.HasPrefix(file, c.Dest) {
					return path.Join(src, strings.TrimPrefix(file, c.Dest))
				}
			case strings.HasSuffix(c.Dest, "/"):
				if path.Join(c.Dest, path.Base(src)) == file {
					return src
				}
			case c.Dest == file:
				return src
			}
		}
	}
	return ""
}

var (
	goBuildRE  = regexp.MustCompile(`go build\b([^;&|]*)`)
	cmdPathRE  = regexp.MustCompile(`(?:^|\s)\./([\w./-]+/cmd/[\w.-]+)`)
	outDirRE   = regexp.MustCompile(`-o\s+(\S+)`)
	dirGuardRE = regexp.MustCompile(`\[ -d ([\w./-]+) \]`)
)

// builtCmds returns the cmd/ paths the build stage compiles with go build,
// the directory it writes them to, and which of them are optional (built
// only if the directory exists).
func builtCmds(build *stage) (paths []string, outDir string, optional map[string]bool) {
	optional = map[string]bool{}
	for _, in := range build.Lines {
		if in.Cmd != "RUN" {
			continue
		}
		guards := map[string]bool{}
		for _, m := range dirGuardRE.FindAllStringSubmatch(in.Args, -1) {
			guards[strings.TrimPrefix(m[1], "./")] = true
		}
		for _, m := range goBuildRE.FindAllStringSubmatch(in.Args, -1) {
			if o := outDirRE.FindStringSubmatch(m[1]); o != nil {
				outDir = o[1]
			}
			for _, p := range cmdPathRE.FindAllStringSubmatch(m[1], -1) {
				paths = append(paths, p[1])
				if guards[p[1]] {
					optional[p[1]] = true
				}
			}
		}
	}
	return paths, outDir, optional
}

func TestParseDockerfile(t *testing.T) {
	file := t.TempDir() + "/Dockerfile"
	os.WriteFile(file, []byte(`# syntax=docker/dockerfile:1
ARG X
FROM golang:1.26 AS build
RUN go build -o /out/ \
      ./a/cmd/one \
      ./b/cmd/two
RUN if [ -d c/cmd/three ]; then go build -o /out/ ./c/cmd/three; fi
FROM scratch AS base
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
FROM base AS one
COPY --from=build /out/ /usr/local/bin/
COPY --from=build --chown=65532:65532 /fs/one /var/lib/one
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/one"]
FROM base AS two
COPY --from=build /out/two /two
ENTRYPOINT ["/two", "--flag"]
`), 0o644)
	stages := parseDockerfile(t, file)
	if len(stages) != 4 {
		t.Fatalf("got %d stages", len(stages))
	}
	paths, out, opt := builtCmds(stages[0])
	if strings.Join(paths, " ") != "a/cmd/one b/cmd/two c/cmd/three" || out != "/out/" || len(opt) != 1 || !opt["c/cmd/three"] {
		t.Errorf("builtCmds: %v %q %v", paths, out, opt)
	}
	one := chain(stages, "one")
	if len(one) != 2 || one[1].From != "scratch" || last(one, "USER") != "65532:65532" {
		t.Errorf("chain one: %+v", one)
	}
	if ep := entrypoint(t, "one", one); installedFrom(one, "build", ep[0]) != "/out/one" {
		t.Errorf("one: installed from %q", installedFrom(one, "build", ep[0]))
	}
	two := chain(stages, "two")
	if ep := entrypoint(t, "two", two); installedFrom(two, "build", ep[0]) != "/out/two" || ep[1] != "--flag" {
		t.Errorf("two: %v", ep)
	}
	if c := parseCopy("--from=build --chown=65532:65532 /fs/one /var/lib/one"); c.Chown != "65532:65532" || c.Dest != "/var/lib/one" {
		t.Errorf("parseCopy: %+v", c)
	}
}
