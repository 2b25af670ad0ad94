package configs

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestLogSection(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "linegate.yaml")
	tests := []struct {
		name    string
		log     string // the log: line added to base; "" = none
		want    Log    // on success
		wantErr string // a fragment of the error
	}{
		{"defaults", "", Log{MaxSize: 10 << 20, MaxFiles: 5, Level: "info", Format: "text"}, ""},
		{"file relative to config", "log: {file: logs/agent.log, max_size: 2MiB, max_files: 3, level: debug, format: json}",
			Log{File: filepath.Join(dir, "logs/agent.log"), MaxSize: 2 << 20, MaxFiles: 3, Level: "debug", Format: "json"}, ""},
		{"absolute file", "log: {file: /var/log/linegate/linegate.log}",
			Log{File: "/var/log/linegate/linegate.log", MaxSize: 10 << 20, MaxFiles: 5, Level: "info", Format: "text"}, ""},
		{"too small", "log: {max_size: 64KiB}", Log{}, "linegate.yaml:10: log: max_size 64KiB is below the minimum 1MiB"},
		{"not whole MiB", "log: {max_size: 1.5MiB}", Log{}, "log: max_size 1536KiB must be whole MiB"},
		{"negative files", "log: {max_files: -1}", Log{}, "log: max_files -1 must be between 1 and 1000"},
		{"bad level", "log: {level: verbose}", Log{}, `log: level "verbose": debug | info | warn | error`},
		{"bad format", "log: {format: xml}", Log{}, `log: format "xml": text | json`},
		{"unknown key", "log: {max_size: 1MiB, rotate: true}", Log{}, `linegate.yaml:10: unknown key "rotate"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text := base
			if tc.log != "" {
				text += tc.log + "\n"
			}
			cfg, err := Parse(name, []byte(text), env(nil))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Log != tc.want {
				t.Fatalf("log %+v, want %+v", cfg.Log, tc.want)
			}
		})
	}
}

func TestPathsFor(t *testing.T) {
	tests := []struct {
		goos, programData string
		want              DefaultPaths
	}{
		{"linux", "", DefaultPaths{Config: "/etc/linegate/linegate.yaml", State: "/var/lib/linegate", Buffer: "/var/lib/linegate/buffer.db", Log: "/var/log/linegate/linegate.log"}},
		{"windows", `D:\Data`, DefaultPaths{Config: `D:\Data\linegate\linegate.yaml`, State: `D:\Data\linegate`, Buffer: `D:\Data\linegate\buffer.db`, Log: `D:\Data\linegate\linegate.log`}},
		{"windows", "", DefaultPaths{Config: `C:\ProgramData\linegate\linegate.yaml`, State: `C:\ProgramData\linegate`, Buffer: `C:\ProgramData\linegate\buffer.db`, Log: `C:\ProgramData\linegate\linegate.log`}},
	}
	for _, tc := range tests {
		if got := PathsFor(tc.goos, tc.programData); got != tc.want {
			t.Errorf("PathsFor(%s, %q) = %+v, want %+v", tc.goos, tc.programData, got, tc.want)
		}
	}
}
