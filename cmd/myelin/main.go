// Command myelin is the Myelin Matrix homeserver. Without a sub-command it
// serves; the sub-commands manage what a server needs before it runs
// (config, accounts, TLS certificates, signing keys). Every failure prints
// one line "myelin: <what>: <fix>" to stderr and exits with status 1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"github.com/myelin-chat/myelin/internal/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// command is a sub-command: its one-line synopsis and its body. A body
// returns an error whose message is "<what>: <fix>".
type command struct {
	usage string
	run   func(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error
}

var commands = map[string]command{
	"generate-config":    {"myelin generate-config [--markdown] [config flags]   print the documented config (or docs/configuration.md)", generateConfig},
	"create-account":     {"myelin create-account --user NAME --password PASSWORD [--admin] [config flags]", createAccount},
	"generate-tls":       {"myelin generate-tls --ca-cert FILE --ca-key FILE --host NAME --out DIR   a CA-signed federation certificate", generateTLS},
	"rotate-signing-key": {"myelin rotate-signing-key [config flags]   new signing key; the old one stays a verify key", rotateSigningKey},
	"version":            {"myelin version", printVersion},
}

// run is main without the process: it returns the exit status, so tests
// can call it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) (code int) {
	defer func() {
		// A bug must not print a stack trace at an administrator: say
		// where it happened in one line instead.
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "myelin: internal error: %v at %s: please report this bug\n", r, panicSite())
			code = 1
		}
	}()
	name, rest := "serve", args
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, rest = args[0], args[1:]
	}
	var err error
	switch name {
	case "help":
		usage(stdout)
		return 0
	case "serve":
		err = serve(ctx, rest, stderr, getenv)
	default:
		cmd, ok := commands[name]
		if !ok {
			err = fmt.Errorf("unknown command %q: run `myelin help` for the commands", name)
			break
		}
		err = cmd.run(ctx, rest, stdout, getenv)
	}
	if errors.Is(err, flag.ErrHelp) {
		usage(stdout)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "myelin: %s\n", strings.ReplaceAll(err.Error(), "\n", "; "))
		return 1
	}
	return 0
}

// panicSite returns file:line of the function that panicked.
func panicSite() string {
	pcs := make([]uintptr, 32)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(3, pcs)])
	for {
		f, more := frames.Next()
		if !strings.HasPrefix(f.Function, "runtime.") {
			return fmt.Sprintf("%s:%d", f.File, f.Line)
		}
		if !more {
			return "unknown place"
		}
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage:")
	fmt.Fprintln(w, "  myelin [config flags]   serve the client API and federation")
	for _, name := range []string{"generate-config", "create-account", "generate-tls", "rotate-signing-key", "version"} {
		fmt.Fprintln(w, "  "+commands[name].usage)
	}
	fmt.Fprintln(w, "\nConfig flags (each also a key of the config file and a MYELIN_* environment variable;")
	fmt.Fprintln(w, "flags win over the environment, which wins over the file):")
	config.WriteFlagHelp(w)
}

// parseFlags parses args with fs, whose errors are made one line with a fix.
func parseFlags(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%v: run `myelin help` for the flags", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: flags are written --name=value", fs.Arg(0))
	}
	return nil
}

// loadConfig parses the config flags of a sub-command (after its own flags
// were defined on fs) and loads the configuration.
func loadConfig(fs *flag.FlagSet, args []string, getenv func(string) string) (*config.Config, error) {
	f := config.AddFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	return f.Load(getenv)
}
