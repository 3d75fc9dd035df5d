package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load builds the configuration from the command-line arguments (flags
// only) and the environment, reading the config file they point at. On first
// run (no file at --config) it creates the data directory and writes the
// documented file with the effective settings. Errors are one line naming the
// setting, where it came from, and the fix.
func Load(args []string, getenv func(string) string) (*Config, error) {
	fs := flag.NewFlagSet("myelin", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f := AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("%v: run `myelin help` for the list of flags", err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q: settings are given as --flag=value", fs.Arg(0))
	}
	return f.Load(getenv)
}

// Flags holds the configuration flags given on a command line. Sub-commands
// with flags of their own register these next to theirs with AddFlags.
type Flags struct {
	raw map[*option]string
}

// AddFlags defines one flag per setting on fs (--server-name, --data-dir, …).
func AddFlags(fs *flag.FlagSet) *Flags {
	f := &Flags{raw: map[*option]string{}}
	for _, o := range options {
		fs.Var(flagValue{f, o}, o.flagName(), o.help)
	}
	return f
}

// flagValue records the raw text of a flag; it is parsed and validated with
// the other layers, so that errors read the same for every source.
type flagValue struct {
	f *Flags
	o *option
}

func (v flagValue) String() string {
	if v.f == nil {
		return ""
	}
	return v.f.raw[v.o]
}
func (v flagValue) Set(s string) error { v.f.raw[v.o] = s; return nil }
func (v flagValue) IsBoolFlag() bool   { return v.o.isBool() }

// Load is the package-level Load for flags already parsed by the caller.
func (f *Flags) Load(getenv func(string) string) (*Config, error) {
	c, firstRun, err := f.resolve(getenv)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create data_dir %s: %v: choose a writable directory with --data-dir", c.DataDir, unwrapPath(err))
	}
	if firstRun {
		if err := writeFirstRun(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Resolve layers defaults, the config file (when it exists), environment and
// flags like Load, but writes nothing: for `myelin generate-config`.
func (f *Flags) Resolve(getenv func(string) string) (*Config, error) {
	c, _, err := f.resolve(getenv)
	return c, err
}

// source says where a setting's value came from, for error messages.
type sources map[string]string

func (s sources) of(key string) string {
	if v, ok := s[key]; ok {
		return v
	}
	return "default " + key
}

func (f *Flags) resolve(getenv func(string) string) (c *Config, firstRun bool, err error) {
	c = Default()
	// The defaults inside data_dir are filled in after every layer, so that
	// a data_dir set in any layer moves them too.
	c.ConfigPath, c.Database, c.SigningKeyPath, c.ACME.CacheDir, c.Media.StorePath = "", "", "", "", ""
	src := sources{}

	// The file's location comes from flags or environment only.
	path := f.pick(getenv, "config")
	if path == "" {
		dataDir := f.pick(getenv, "data_dir")
		if dataDir == "" {
			dataDir = c.DataDir
		}
		path = filepath.Join(dataDir, "myelin.yaml")
	}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		firstRun = true
	case err != nil:
		return nil, false, fmt.Errorf("cannot read config file %s: %v: fix its permissions or point --config elsewhere", path, unwrapPath(err))
	default:
		if err := applyYAML(c, src, path, data); err != nil {
			return nil, false, err
		}
	}

	for _, o := range options {
		if v := getenv(o.envName()); v != "" {
			if err := o.set(c, v); err != nil {
				return nil, false, fmt.Errorf("environment variable %s: %v", o.envName(), err)
			}
			src[o.key] = "environment variable " + o.envName()
		}
	}
	for _, o := range options {
		if v, ok := f.raw[o]; ok {
			if err := o.set(c, v); err != nil {
				return nil, false, fmt.Errorf("flag --%s: %v", o.flagName(), err)
			}
			src[o.key] = "flag --" + o.flagName()
		}
	}
	c.ConfigPath = path
	c.fillDerived()

	for _, o := range options {
		if o.check == nil {
			continue
		}
		if err := o.check(c); err != nil {
			where := src.of(o.key)
			if strings.HasPrefix(where, "config file") {
				where += ": " + o.key
			}
			return nil, false, fmt.Errorf("%s: %v", where, err)
		}
	}
	if err := crossCheck(c, src.of); err != nil {
		return nil, false, err
	}
	return c, firstRun, nil
}

// pick returns the flag or environment value of an option, flag first.
func (f *Flags) pick(getenv func(string) string, key string) string {
	o := optionByKey(key)
	if v, ok := f.raw[o]; ok {
		return v
	}
	return getenv(o.envName())
}

// applyYAML sets the options found in a config file. It walks the YAML
// tree itself rather than decoding into the struct, to report unknown keys,
// repeated keys and wrong types with their line and a fix.
func applyYAML(c *Config, src sources, path string, data []byte) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg := strings.ReplaceAll(err.Error(), "\n", " ")
		return fmt.Errorf("config file %s: %s: fix the YAML syntax (compare with `myelin generate-config`)", path, msg)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil // empty file: every default
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil // only comments
	}
	return applyMapping(c, src, path, root, "")
}

func applyMapping(c *Config, src sources, path string, m *yaml.Node, prefix string) error {
	where := func(n *yaml.Node) string { return fmt.Sprintf("config file %s line %d", path, n.Line) }
	if m.Kind != yaml.MappingNode {
		if prefix == "" {
			return fmt.Errorf("%s: the file must be a mapping of key: value lines: compare with `myelin generate-config`", where(m))
		}
		return fmt.Errorf("%s: %s must be a mapping of key: value lines: indent its settings under it", where(m), strings.TrimSuffix(prefix, "."))
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if v.Kind == yaml.AliasNode {
			v = v.Alias
		}
		key := prefix + k.Value
		if k.Kind != yaml.ScalarNode {
			return fmt.Errorf("%s: a key must be a plain name: compare with `myelin generate-config`", where(k))
		}
		if seen[key] {
			return fmt.Errorf("%s: %s appears twice: keep one of them", where(k), key)
		}
		seen[key] = true
		if o := optionByKey(key); o != nil && !o.fileless {
			if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
				continue // "key:" with no value keeps the default
			}
			if v.Kind != yaml.ScalarNode {
				return fmt.Errorf("%s: %s must be a single value, not a list or mapping: write %s: %s", where(v), key, k.Value, o.format(Default()))
			}
			if err := o.set(c, v.Value); err != nil {
				return fmt.Errorf("%s: %s: %v", where(v), key, err)
			}
			src[key] = where(v)
			continue
		}
		if isSection(key) {
			if err := applyMapping(c, src, path, v, key+"."); err != nil {
				return err
			}
			continue
		}
		fix := "remove it"
		if s := suggest(key); s != "" {
			fix = "did you mean " + s + "? rename or remove it"
		}
		return fmt.Errorf("%s: unknown key %s: %s", where(k), key, fix)
	}
	return nil
}

// isSection reports whether key names a nested mapping such as "acme".
func isSection(key string) bool {
	for _, o := range options {
		if strings.HasPrefix(o.key, key+".") {
			return true
		}
	}
	return false
}

// suggest returns the known key closest to key, if it is close enough to be
// a typo.
func suggest(key string) string {
	best, bestDist := "", 4
	for _, o := range options {
		if o.fileless {
			continue
		}
		if d := editDistance(key, o.key); d < bestDist {
			best, bestDist = o.key, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// writeFirstRun writes the documented config file: every setting at its
// default, except server_name and data_dir, which name and place the server
// and so must stay what this first run used. Other flags and environment
// variables apply to this run only; writing them would, for instance, keep
// --federation-insecure-skip-verify on after the flag is dropped.
// O_EXCL: never overwrite a file another process wrote meanwhile.
// Mode 0600: the file is where secrets are meant to go.
func writeFirstRun(c *Config) error {
	if err := os.MkdirAll(filepath.Dir(c.ConfigPath), 0o700); err != nil {
		return fmt.Errorf("cannot create the directory of config file %s: %v: choose a writable path with --config", c.ConfigPath, unwrapPath(err))
	}
	written := firstRunConfig(c)
	var buf bytes.Buffer
	if err := WriteDocumented(&buf, written); err != nil {
		return err
	}
	fh, err := os.OpenFile(c.ConfigPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("cannot create config file %s: %v: choose a writable path with --config", c.ConfigPath, unwrapPath(err))
	}
	_, err = fh.Write(buf.Bytes())
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(c.ConfigPath)
		return fmt.Errorf("cannot write config file %s: %v: free some space or choose another path with --config", c.ConfigPath, err)
	}
	return nil
}

// unwrapPath drops the "op path:" prefix of a *fs.PathError, because our
// messages name the path themselves.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// firstRunConfig is the configuration writeFirstRun writes for c.
func firstRunConfig(c *Config) *Config {
	w := Default()
	w.ServerName, w.DataDir = c.ServerName, c.DataDir
	w.ConfigPath, w.Database, w.SigningKeyPath, w.ACME.CacheDir, w.Media.StorePath = c.ConfigPath, "", "", "", ""
	w.fillDerived()
	return w
}
