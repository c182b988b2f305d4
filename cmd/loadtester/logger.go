package main

import (
	"io"

	"github.com/go-logr/logr"
	"github.com/go-logr/zapr"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// levels are the values of -log-level.
var levels = map[string]zapcore.Level{
	"debug": zapcore.DebugLevel, "info": zapcore.InfoLevel,
	"warning": zapcore.WarnLevel, "warn": zapcore.WarnLevel, "error": zapcore.ErrorLevel,
}

// newLogger returns a zap logger with -log-level and -zap-encoding, writing
// to w. logr's V(1) is zap's debug level.
func newLogger(o *options, w io.Writer) logr.Logger {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	encoder := zapcore.NewJSONEncoder(enc)
	if o.zapEncoding == "console" {
		encoder = zapcore.NewConsoleEncoder(enc)
	}
	raw := zap.New(zapcore.NewCore(encoder, zapcore.AddSync(w), levels[o.logLevel]))
	if o.zapReplaceGlobals {
		zap.ReplaceGlobals(raw)
	}
	return zapr.NewLogger(raw)
}
