package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// sourceURL is the repository the images are built from.
const sourceURL = "https://" + module

// source is where the images come from: it goes into their labels, and its
// time into every timestamp, so that a commit always gives the same images.
type source struct {
	url string
	// revision is the commit, with "-dirty" when the tree has changes not
	// committed.
	revision string
	// time is the commit's time.
	time time.Time
}

// sourceOf reads the checkout's commit with git.
func sourceOf(ctx context.Context) (source, error) {
	revision, err := git(ctx, "rev-parse", "HEAD")
	if err != nil {
		return source{}, err
	}
	committed, err := git(ctx, "log", "-1", "--format=%ct", "HEAD")
	if err != nil {
		return source{}, err
	}
	seconds, err := strconv.ParseInt(committed, 10, 64)
	if err != nil {
		return source{}, fmt.Errorf("reading the commit time %q: %w", committed, err)
	}
	changes, err := git(ctx, "status", "--porcelain")
	if err != nil {
		return source{}, err
	}
	if changes != "" {
		revision += "-dirty"
	}
	return source{url: sourceURL, revision: revision, time: time.Unix(seconds, 0).UTC()}, nil
}

// git runs git with args and returns its output, trimmed.
func git(ctx context.Context, args ...string) (string, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}
