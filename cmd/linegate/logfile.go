package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"gopkg.in/natefinch/lumberjack.v2"

	"github.com/linegate/linegate/configs"
)

// agentLogger builds the running agent's logger from the config's log
// section; --log-level and --log-format, when given, win over it. Without
// log.file it writes to stderr (journald under systemd). level is the live
// level, which a reload may change (nil when the flag fixed it); closeLog
// closes the log file.
//
// The file is rotated by lumberjack (size and count, as asked, and it
// handles Windows' rename rules), not by a writer of our own.
func (g *globals) agentLogger(cmd *cobra.Command, lc configs.Log) (log *slog.Logger, level *slog.LevelVar, closeLog func(), err error) {
	levelText, format := lc.Level, lc.Format
	flags := cmd.Flags()
	fixed := flags.Changed("log-level")
	if fixed || levelText == "" {
		levelText = g.logLevel
	}
	if flags.Changed("log-format") || format == "" {
		format = g.logFormat
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(levelText)); err != nil {
		return nil, nil, nil, usageError(fmt.Errorf("log level %q: debug | info | warn | error", levelText))
	}
	lv := new(slog.LevelVar)
	lv.Set(l)
	var w io.Writer = g.stderr
	closeLog = func() {}
	if lc.File != "" {
		lj, err := openLogFile(lc)
		if err != nil {
			return nil, nil, nil, err
		}
		w, closeLog = lj, func() { lj.Close() }
	}
	log, err = newLogger(w, format, lv)
	if err != nil {
		closeLog()
		return nil, nil, nil, err
	}
	if fixed {
		lv = nil
	}
	return log, lv, closeLog, nil
}

func newLogger(w io.Writer, format string, level slog.Leveler) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usageError(fmt.Errorf("log format %q: text | json", format))
}

// openLogFile opens the rotated log file. It is opened (and its folder
// made) here, so that a folder the agent may not write fails at start with
// the path, not silently at the first log line.
func openLogFile(lc configs.Log) (*lumberjack.Logger, error) {
	if err := os.MkdirAll(filepath.Dir(lc.File), 0o750); err != nil {
		return nil, fmt.Errorf("log.file: %w", err)
	}
	f, err := os.OpenFile(lc.File, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("log.file: %w", err)
	}
	f.Close()
	return &lumberjack.Logger{
		Filename:   lc.File,
		MaxSize:    int(lc.MaxSize >> 20), // lumberjack counts in MiB; validation keeps it whole
		MaxBackups: lc.MaxFiles,
	}, nil
}
