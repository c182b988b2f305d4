package main

import (
	"io"

	"github.com/go-logr/logr"
	"github.com/go-logr/zapr"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	crzap "sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// newLogger returns a zap logger with -log-level and -zap-encoding, writing
// to w. logr's V(1) is zap's debug level.
func newLogger(opts *Options, w io.Writer) logr.Logger {
	level := map[string]zapcore.Level{
		"debug": zapcore.DebugLevel, "info": zapcore.InfoLevel,
		"warning": zapcore.WarnLevel, "warn": zapcore.WarnLevel, "error": zapcore.ErrorLevel,
	}[opts.LogLevel]
	iso8601 := func(c *zapcore.EncoderConfig) { c.EncodeTime = zapcore.ISO8601TimeEncoder }
	encoder := crzap.JSONEncoder(iso8601)
	if opts.ZapEncoding == "console" {
		encoder = crzap.ConsoleEncoder(iso8601)
	}
	raw := crzap.NewRaw(crzap.WriteTo(w), crzap.Level(level), encoder)
	if opts.ZapReplaceGlobals {
		zap.ReplaceGlobals(raw)
	}
	return zapr.NewLogger(raw)
}

// logNotWired logs the flags that are accepted for compatibility with
// Flagger but have no effect yet: one warning per flag the user set, and one
// line listing them all.
func logNotWired(logger logr.Logger, opts *Options) {
	warn := func(msg string) { logger.Info(msg) }
	// logr has no warning level; log at zap's when the sink is zap's.
	if u, ok := logger.GetSink().(interface{ GetUnderlying() *zap.Logger }); ok {
		warn = func(msg string) { u.GetUnderlying().Warn(msg) }
	}
	for _, line := range opts.NotWiredWarnings() {
		warn(line)
	}
	logger.Info("These flags are accepted for compatibility with Flagger but have no effect yet", "flags", NotWiredFlags())
}
