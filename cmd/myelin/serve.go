package main

import (
	"context"
	"flag"
	"io"
	"log/slog"

	"github.com/myelin-chat/myelin/internal/config"
	"github.com/myelin-chat/myelin/internal/server"
)

// serve loads the configuration and runs the server until ctx is cancelled
// (SIGINT or SIGTERM), then shuts down gracefully.
func serve(ctx context.Context, args []string, stderr io.Writer, getenv func(string) string) error {
	cfg, err := loadConfig(flag.NewFlagSet("myelin", flag.ContinueOnError), args, getenv)
	if err != nil {
		return err
	}
	logger := newLogger(cfg, stderr)
	if cfg.OpenRegistration {
		logger.Warn("open registration is on: anyone who can reach the client API can create an account")
	}
	if cfg.FederationInsecureSkipVerify {
		logger.Warn("federation TLS verification is off: any server can impersonate any other; use only for development")
	}
	srv, err := server.New(cfg, logger)
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}

// newLogger makes the slog logger of the configuration. Load has validated
// the level and format.
func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
