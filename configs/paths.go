package configs

import (
	"os"
	"runtime"
)

// DefaultConfigPath is where the service looks for its config, per OS.
func DefaultConfigPath() string { return PathsFor(runtime.GOOS, programData()).Config }

// Paths are the standard paths of the OS linegate runs on.
func Paths() DefaultPaths { return PathsFor(runtime.GOOS, programData()) }

// DefaultPaths are a line PC's standard places for the config, the state
// (buffer, pki/) and the optional log file.
type DefaultPaths struct {
	Config string // the config file
	State  string // folder of buffer.db and pki/
	Buffer string // the buffer file
	Log    string // where a log file would go
}

// PathsFor returns the standard paths on goos ("linux", "windows", ...);
// programData is %ProgramData% on Windows ("" = C:\ProgramData).
func PathsFor(goos, programData string) DefaultPaths {
	if goos == "windows" {
		if programData == "" {
			programData = `C:\ProgramData`
		}
		dir := programData + `\linegate`
		return DefaultPaths{Config: dir + `\linegate.yaml`, State: dir, Buffer: dir + `\buffer.db`, Log: dir + `\linegate.log`}
	}
	return DefaultPaths{Config: "/etc/linegate/linegate.yaml", State: "/var/lib/linegate", Buffer: DefaultBufferPath, Log: "/var/log/linegate/linegate.log"}
}

// programData is %ProgramData%, Windows' folder for services' data.
func programData() string { return os.Getenv("ProgramData") }
