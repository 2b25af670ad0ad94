//go:build !linux

package peers

import "errors"

type statfsFree struct{}

func (statfsFree) free(string) (int64, error) { return 0, errors.New("statfs: Linux only") }
