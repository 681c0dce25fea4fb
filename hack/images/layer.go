package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// layerFile is a regular file of a layer.
type layerFile struct {
	path    string
	mode    int64
	content []byte
}

// newLayer writes files, and the directories above them, as a layer owned
// by root and dated modTime. It writes the tar itself because the layer's
// bytes must not depend on the build machine (its owners, umask or clock),
// and go-containerregistry makes layers from tar streams, or from files with
// one mode for all (crane.Layer), which cannot mark a binary executable.
func newLayer(files []layerFile, modTime time.Time) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, dir := range parentDirs(files) {
		if err := tw.WriteHeader(&tar.Header{
			Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755, ModTime: modTime,
		}); err != nil {
			return nil, fmt.Errorf("writing the directory %s: %w", dir, err)
		}
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{
			Typeflag: tar.TypeReg, Name: strings.TrimPrefix(f.path, "/"), Mode: f.mode,
			Size: int64(len(f.content)), ModTime: modTime,
		}); err != nil {
			return nil, fmt.Errorf("writing %s: %w", f.path, err)
		}
		if _, err := tw.Write(f.content); err != nil {
			return nil, fmt.Errorf("writing %s: %w", f.path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layer := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layer)), nil
	})
}

// parentDirs lists the directories above files, without the root, parents
// first.
func parentDirs(files []layerFile) []string {
	var dirs []string
	for _, f := range files {
		for dir := path.Dir(strings.TrimPrefix(f.path, "/")); dir != "."; dir = path.Dir(dir) {
			dirs = append(dirs, dir)
		}
	}
	slices.Sort(dirs)
	return slices.Compact(dirs)
}
