package configs

// Log configures where the agent's own log goes: stderr (journald under
// systemd, the service's event log on Windows) when File is empty, else a
// file rotated by size.
type Log struct {
	// File is the log file; "" = stderr. Relative paths are relative to
	// the config file's folder.
	File string `yaml:"file"`
	// MaxSize is the size at which the file is rotated (whole MiB; default
	// 10MiB) and MaxFiles how many rotated files are kept besides the
	// current one (default 5).
	MaxSize  ByteSize `yaml:"max_size"`
	MaxFiles int      `yaml:"max_files"`
	// Level is debug | info | warn | error (default info); Format is
	// text | json (default text). The --log-level and --log-format flags,
	// when given, win.
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// Log defaults and limits (README: Logs).
const (
	DefaultLogMaxSize  = ByteSize(10 << 20)
	MinLogMaxSize      = ByteSize(1 << 20)
	DefaultLogMaxFiles = 5
	MaxLogMaxFiles     = 1000
)

// Log levels and formats.
var (
	LogLevels  = []string{"debug", "info", "warn", "error"}
	LogFormats = []string{"text", "json"}
)

// log checks and defaults the log section.
func (v *validator) log() {
	l := &v.cfg.Log
	n := v.nodes.section("log")
	if l.File != "" {
		l.File = v.resolve(l.File)
	}
	switch {
	case l.MaxSize == 0:
		l.MaxSize = DefaultLogMaxSize
	case l.MaxSize < MinLogMaxSize:
		v.addf(keyLine(n, "max_size"), "log", "max_size %s is below the minimum %s", l.MaxSize, MinLogMaxSize)
	case l.MaxSize%(1<<20) != 0:
		v.addf(keyLine(n, "max_size"), "log", "max_size %s must be whole MiB (10MiB)", l.MaxSize)
	}
	switch {
	case l.MaxFiles == 0:
		l.MaxFiles = DefaultLogMaxFiles
	case l.MaxFiles < 1 || l.MaxFiles > MaxLogMaxFiles:
		v.addf(keyLine(n, "max_files"), "log", "max_files %d must be between 1 and %d", l.MaxFiles, MaxLogMaxFiles)
	}
	if l.Level == "" {
		l.Level = "info"
	} else if !oneOf(l.Level, LogLevels) {
		v.addf(keyLine(n, "level"), "log", "level %q: %s", l.Level, quoteList(LogLevels))
	}
	if l.Format == "" {
		l.Format = "text"
	} else if !oneOf(l.Format, LogFormats) {
		v.addf(keyLine(n, "format"), "log", "format %q: %s", l.Format, quoteList(LogFormats))
	}
}
