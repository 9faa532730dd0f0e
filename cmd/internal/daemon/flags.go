package daemon

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// Flags is a flag set whose settings fall back to environment variables:
// every setting is a flag, and a flag given on the command line wins over
// its environment variable, which is then not even parsed.
type Flags struct {
	fs     *flag.FlagSet
	getenv func(string) string
	env    map[string][]string // flag name -> environment keys, first wins
	usage  map[string]string   // flag name -> its text, without the env names
	shown  map[string]string   // flag name -> how Reference shows its default
}

// NewFlags returns Flags for the program name. usage, when not empty, is
// printed by -h before the flags (subcommands, say). Output goes to output.
func NewFlags(name, usage string, getenv func(string) string, output io.Writer) *Flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(output)
	fs.Usage = func() {
		if usage != "" {
			fmt.Fprintln(output, strings.TrimSpace(usage))
			fmt.Fprintln(output)
		}
		fmt.Fprintf(output, "Flags of %s (each also read from the environment variable named after it; a flag given wins):\n", name)
		fs.PrintDefaults()
	}
	return &Flags{fs: fs, getenv: getenv, env: map[string][]string{}, usage: map[string]string{}, shown: map[string]string{}}
}

// value is a flag.Value whose parse errors read well in one line.
type value[T any] struct {
	p     *T
	parse func(string) (T, error)
	show  func(T) string
}

func (v value[T]) Set(s string) error {
	x, err := v.parse(s)
	if err != nil {
		return err
	}
	*v.p = x
	return nil
}

func (v value[T]) String() string {
	if v.p == nil {
		return ""
	}
	return v.show(*v.p)
}

func define[T any](f *Flags, p *T, name string, def T, usage string, env []string, parse func(string) (T, error), show func(T) string) {
	*p = def
	f.env[name] = env
	f.usage[name] = usage
	if len(env) > 0 {
		usage += " (env " + strings.Join(env, ", or ") + ")"
	}
	f.fs.Var(value[T]{p: p, parse: parse, show: show}, name, usage)
}

// String defines a string setting stored in p. env names the environment
// variables it falls back to, the first one set winning; later names are
// older aliases.
func (f *Flags) String(p *string, name, def, usage string, env ...string) {
	define(f, p, name, def, usage, env, func(s string) (string, error) { return s, nil }, func(s string) string { return s })
}

// Int defines an integer setting.
func (f *Flags) Int(p *int, name string, def int, usage string, env ...string) {
	define(f, p, name, def, usage, env, func(s string) (int, error) {
		n, err := strconv.Atoi(s)
		if err != nil {
			return 0, errors.New("not an integer")
		}
		return n, nil
	}, strconv.Itoa)
}

// Duration defines a duration setting, such as 500ms or 2s.
func (f *Flags) Duration(p *time.Duration, name string, def time.Duration, usage string, env ...string) {
	define(f, p, name, def, usage, env, func(s string) (time.Duration, error) {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, errors.New("not a duration such as 500ms or 2s")
		}
		return d, nil
	}, time.Duration.String)
}

// List defines a comma-separated list setting; empty items are dropped.
func (f *Flags) List(p *[]string, name, usage string, env ...string) {
	define(f, p, name, nil, usage, env, func(s string) ([]string, error) {
		var out []string
		for _, item := range strings.Split(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				out = append(out, item)
			}
		}
		return out, nil
	}, func(l []string) string { return strings.Join(l, ",") })
}

// Bool defines a boolean setting.
func (f *Flags) Bool(p *bool, name string, def bool, usage string, env ...string) {
	define(f, p, name, def, usage, env, func(s string) (bool, error) {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return false, errors.New("not true or false")
		}
		return b, nil
	}, strconv.FormatBool)
}

// Parse parses args, then applies the environment to every setting not
// given as a flag. It returns flag.ErrHelp for -h, and otherwise the first
// invalid flag or environment value, in one line that names it.
func (f *Flags) Parse(args []string) error {
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	if rest := f.fs.Args(); len(rest) > 0 {
		return fmt.Errorf("unexpected argument %q", rest[0])
	}
	given := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { given[fl.Name] = true })
	var err error
	f.fs.VisitAll(func(fl *flag.Flag) {
		if err != nil || given[fl.Name] {
			return
		}
		for _, key := range f.env[fl.Name] {
			v := f.getenv(key)
			if v == "" {
				continue
			}
			if serr := fl.Value.Set(v); serr != nil {
				err = fmt.Errorf("invalid %s=%q (-%s): %v", key, v, fl.Name, serr)
			}
			return
		}
	})
	return err
}

// ShowDefault makes Reference show text as the default of the flag name,
// for a default that is not a constant (a host name, say).
func (f *Flags) ShowDefault(name, text string) { f.shown[name] = text }

// Reference returns the settings as a Markdown table: flag, environment
// variables, default and meaning, in flag order.
func (f *Flags) Reference() string {
	var b strings.Builder
	b.WriteString("| flag | env | default | |\n|---|---|---|---|\n")
	cell := func(s string) string { return strings.ReplaceAll(s, "|", "\\|") }
	code := func(s string) string {
		if s == "" {
			return "none"
		}
		return "`" + s + "`"
	}
	f.fs.VisitAll(func(fl *flag.Flag) {
		env := make([]string, len(f.env[fl.Name]))
		for i, key := range f.env[fl.Name] {
			env[i] = code(key)
		}
		def := code(fl.DefValue)
		if s, ok := f.shown[fl.Name]; ok {
			def = s
		}
		fmt.Fprintf(&b, "| `-%s` | %s | %s | %s |\n", fl.Name, strings.Join(env, ", "), cell(def), cell(f.usage[fl.Name]))
	})
	return b.String()
}

// Require returns an error naming the setting when ok is false.
func Require(ok bool, name, format string, args ...any) error {
	if ok {
		return nil
	}
	return fmt.Errorf("invalid -%s: %s", name, fmt.Sprintf(format, args...))
}

// FirstError returns the first error that is not nil.
func FirstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// CheckReference compares the generated reference of the program name in
// the document at path (the text between the lines "<!-- flags of name -->"
// and "<!-- end of flags of name -->") with ref, or with update rewrites
// it. It is for the tests that keep the document current.
func CheckReference(path, name, ref string, update bool) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	doc := string(b)
	begin, end := "<!-- flags of "+name+" -->\n", "<!-- end of flags of "+name+" -->"
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no section of the flags of %s", path, name)
	}
	i += len(begin)
	if update {
		return os.WriteFile(path, []byte(doc[:i]+ref+doc[j:]), 0o644)
	}
	if doc[i:j] != ref {
		return fmt.Errorf("the flags of %s in %s are stale; run go test ./cmd/%s -run TestConfigReference -update; they are:\n%s", name, path, name, ref)
	}
	return nil
}
