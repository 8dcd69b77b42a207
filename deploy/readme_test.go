package deploy

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the configuration reference tables of README.md from the binaries' --help")

// The configuration reference of README.md holds, per binary, a table
// between these markers; the test compares it with the binary's --help.
func beginMarker(bin string) string {
	return "<!-- BEGIN " + bin + " --help: deploy/readme_test.go checks this table; go test ./deploy -run TestConfigurationReference -update rewrites it -->"
}
func endMarker(bin string) string { return "<!-- END " + bin + " --help -->" }

// refRow is a row of a reference table.
type refRow struct{ Flag, Env, Default, Meaning string }

func (r refRow) key() string { return r.Flag + " " + r.Env + " " + r.Default }

var rowRE = regexp.MustCompile("^\\| *(?:`--([a-z0-9-]+)`)? *\\| *(?:`(THICKET_[A-Z0-9_]+)`)? *\\| *(?:`([^`]*)`)? *\\| *(.*?) *\\|$")

func parseRows(t *testing.T, bin, table string) []refRow {
	var rows []refRow
	for _, line := range strings.Split(table, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "| flag ") || strings.HasPrefix(line, "|---") {
			continue
		}
		m := rowRE.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("README.md, %s reference: cannot read row %q (want | `--flag` | `THICKET_X` | `default` | meaning |)", bin, line)
			continue
		}
		rows = append(rows, refRow{Flag: m[1], Env: m[2], Default: m[3], Meaning: m[4]})
	}
	return rows
}

// wantRows is the reference of one binary: a row per flag, then a row per
// environment variable the help names but no flag reads. Meanings come from
// have (hand-written) where a row matches by flag or variable, else from
// the help text.
func wantRows(h *helpDoc, have []refRow) []refRow {
	meaning := map[string]string{}
	for _, r := range have {
		meaning["flag "+r.Flag] = r.Meaning
		meaning["env "+r.Env] = r.Meaning
	}
	pick := func(key, fallback string) string {
		if m := meaning[key]; m != "" {
			return m
		}
		return strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;").Replace(fallback)
	}
	var rows []refRow
	bound := map[string]bool{}
	for _, f := range h.Flags {
		rows = append(rows, refRow{Flag: f.Name, Env: f.Env, Default: f.Default, Meaning: pick("flag "+f.Name, f.Help)})
		bound[f.Env] = true
	}
	for _, env := range sortedKeys(h.Envs) {
		if !bound[env] {
			rows = append(rows, refRow{Env: env, Meaning: pick("env "+env, "Read from the environment only; see the binary's --help.")})
		}
	}
	return rows
}

func formatRows(rows []refRow) string {
	var b strings.Builder
	b.WriteString("| flag | environment | default | meaning |\n|---|---|---|---|\n")
	code := func(s string) string {
		if s == "" {
			return ""
		}
		return "`" + s + "`"
	}
	for _, r := range rows {
		fl := ""
		if r.Flag != "" {
			fl = "`--" + r.Flag + "`"
		}
		b.WriteString("| " + fl + " | " + code(r.Env) + " | " + code(r.Default) + " | " + r.Meaning + " |\n")
	}
	return b.String()
}

// TestConfigurationReference keeps the README's configuration reference
// true: every flag and environment variable each binary's --help prints is
// in its table with the same default, and the table has nothing else.
func TestConfigurationReference(t *testing.T) {
	help := binaries(t)
	file := filepath.Join(repo, "README.md")
	text := readme(t)
	if !strings.Contains(text, "\n## Configuration reference\n") {
		t.Fatal("README.md: no section ## Configuration reference")
	}
	changed := false
	for _, c := range mainCmds(t) {
		bin := filepath.Base(c)
		begin, end := beginMarker(bin), endMarker(bin)
		i, j := strings.Index(text, begin), strings.Index(text, end)
		if i < 0 || j < i {
			t.Errorf("README.md: no reference table for %s between\n%s\nand\n%s", bin, begin, end)
			continue
		}
		table := text[i+len(begin) : j]
		have := parseRows(t, bin, table)
		want := wantRows(help[bin], have)
		if *update {
			if s := "\n" + formatRows(want); s != table {
				text = text[:i+len(begin)] + s + text[j:]
				changed = true
			}
			continue
		}
		haveKeys, wantKeys := map[string]bool{}, map[string]bool{}
		for _, r := range have {
			haveKeys[r.key()] = true
		}
		for _, r := range want {
			wantKeys[r.key()] = true
			if !haveKeys[r.key()] {
				t.Errorf("README.md, %s reference: missing or different: flag %q env %q default %q", bin, r.Flag, r.Env, r.Default)
			}
		}
		for _, r := range have {
			if !wantKeys[r.key()] {
				t.Errorf("README.md, %s reference: %s --help has no flag %q env %q default %q", bin, bin, r.Flag, r.Env, r.Default)
			}
		}
	}
	if t.Failed() && !*update {
		t.Log("after checking the meanings, go test ./deploy -run TestConfigurationReference -update rewrites the tables")
	}
	if changed {
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Log("rewrote the configuration reference in README.md")
	}
}
