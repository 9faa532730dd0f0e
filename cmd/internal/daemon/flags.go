package daemon

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"
)

// Flags is a flag set whose defaults come from environment variables, so
// every setting is a flag with an environment fallback and flags win.
type Flags struct {
	fs     *flag.FlagSet
	getenv func(string) string
	err    error
}

// NewFlags returns Flags for the program name. Usage goes to output.
func NewFlags(name string, getenv func(string) string, output io.Writer) *Flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(output)
	return &Flags{fs: fs, getenv: getenv}
}

// env returns the environment value of key and whether it is set.
func (f *Flags) env(key string) (string, bool) {
	v := f.getenv(key)
	return v, v != ""
}

func (f *Flags) envError(name, key, val string, err error) {
	if f.err == nil {
		f.err = fmt.Errorf("invalid %s=%q (-%s): %v", key, val, name, err)
	}
}

// String defines a string setting.
func (f *Flags) String(name, key, def, usage string) *string {
	if v, ok := f.env(key); ok {
		def = v
	}
	return f.fs.String(name, def, usage+" (env "+key+")")
}

// Int defines an integer setting.
func (f *Flags) Int(name, key string, def int, usage string) *int {
	if v, ok := f.env(key); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			f.envError(name, key, v, errors.New("not an integer"))
		} else {
			def = n
		}
	}
	return f.fs.Int(name, def, usage+" (env "+key+")")
}

// Duration defines a duration setting, such as 500ms or 2s.
func (f *Flags) Duration(name, key string, def time.Duration, usage string) *time.Duration {
	if v, ok := f.env(key); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			f.envError(name, key, v, errors.New("not a duration such as 500ms or 2s"))
		} else {
			def = d
		}
	}
	return f.fs.Duration(name, def, usage+" (env "+key+")")
}

// Bool defines a boolean setting.
func (f *Flags) Bool(name, key string, def bool, usage string) *bool {
	if v, ok := f.env(key); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			f.envError(name, key, v, errors.New("not true or false"))
		} else {
			def = b
		}
	}
	return f.fs.Bool(name, def, usage+" (env "+key+")")
}

// Parse parses args. It returns flag.ErrHelp for -h, and otherwise the
// first invalid environment value or flag, in one line that names it.
func (f *Flags) Parse(args []string) error {
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	if rest := f.fs.Args(); len(rest) > 0 {
		return fmt.Errorf("unexpected argument %q", rest[0])
	}
	return f.err
}

// Require returns an error naming the setting when ok is false.
func Require(ok bool, name, format string, args ...any) error {
	if ok {
		return nil
	}
	return fmt.Errorf("invalid -%s: %s", name, fmt.Sprintf(format, args...))
}
