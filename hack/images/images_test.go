package main

import (
	"archive/tar"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"sigs.k8s.io/yaml"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// smallImages are the images of `make images` with the smallest of their
// programs in each, so that building them twice stays quick: everything but
// the binary's source is what `make images` builds.
func smallImages() []imageSpec {
	specs := append([]imageSpec(nil), images...)
	for i := range specs {
		specs[i].pkg = module + "/test/images/pause"
	}
	return specs
}

// buildDirs are the directories builtTwice made, removed after the tests.
var buildDirs []string

// builtTwice builds the small images twice from this checkout into two
// directories, as two runs of `make images` would, once for all the tests.
var builtTwice = sync.OnceValues(func() ([2]string, error) {
	ctx := context.Background()
	source, err := sourceOf(ctx)
	if err != nil {
		return [2]string{}, err
	}
	var outs [2]string
	for i := range outs {
		if outs[i], err = os.MkdirTemp("", "images-test-"); err != nil {
			return outs, err
		}
		buildDirs = append(buildDirs, outs[i])
		if _, err := buildImages(ctx, smallImages(), outs[i], runtime.GOARCH, source); err != nil {
			return outs, err
		}
	}
	return outs, nil
})

func TestMain(m *testing.M) {
	code := m.Run()
	for _, dir := range buildDirs {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

// builds returns the two builds' directories.
func builds(t *testing.T) (first, second string) {
	t.Helper()
	outs, err := builtTwice()
	if err != nil {
		t.Fatal(err)
	}
	return outs[0], outs[1]
}

func TestTheSameCommitGivesTheSameImages(t *testing.T) {
	first, second := builds(t)
	firstList, err := os.ReadFile(filepath.Join(first, "images.txt"))
	if err != nil {
		t.Fatal(err)
	}
	secondList, err := os.ReadFile(filepath.Join(second, "images.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(firstList), string(secondList)); diff != "" {
		t.Errorf("images.txt of the second build differs from the first's (-first +second):\n%s", diff)
	}
	for _, spec := range images {
		a, err := os.ReadFile(filepath.Join(first, spec.file))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(second, spec.file))
		if err != nil {
			t.Fatal(err)
		}
		if string(a) != string(b) {
			t.Errorf("%s differs between the two builds", spec.file)
		}
	}
}

// layerEntry is what a test checks of a file in a layer.
type layerEntry struct {
	Name     string
	Mode     int64
	Uid, Gid int
	ModTime  time.Time
}

// imageSummary is what a test checks of an image read back from its tarball.
type imageSummary struct {
	RepoTags   []string
	ID         string
	OS, Arch   string
	Created    time.Time
	User       string
	Entrypoint []string
	Labels     map[string]string
	Layers     [][]layerEntry
}

func TestEachImageIsWhatItsSpecSays(t *testing.T) {
	out, _ := builds(t)
	source, err := sourceOf(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	listed := readImageList(t, filepath.Join(out, "images.txt"))
	commitTime := source.time
	files := func(entrypoint string, withRoots bool) []layerEntry {
		entries := []layerEntry{}
		if withRoots {
			entries = append(entries,
				layerEntry{Name: "etc/", Mode: 0o755, ModTime: commitTime},
				layerEntry{Name: "etc/ssl/", Mode: 0o755, ModTime: commitTime},
				layerEntry{Name: "etc/ssl/certs/", Mode: 0o755, ModTime: commitTime})
		}
		entries = append(entries, layerEntry{Name: strings.TrimPrefix(entrypoint, "/"), Mode: 0o755, ModTime: commitTime})
		if withRoots {
			entries = append(entries, layerEntry{Name: "etc/ssl/certs/ca-certificates.crt", Mode: 0o644, ModTime: commitTime})
		}
		return entries
	}
	labels := func(title, version string) map[string]string {
		return map[string]string{
			"org.opencontainers.image.title":    title,
			"org.opencontainers.image.version":  version,
			"org.opencontainers.image.source":   "https://github.com/pybase/extraction-operator",
			"org.opencontainers.image.revision": source.revision,
			"org.opencontainers.image.created":  commitTime.Format(time.RFC3339),
		}
	}
	tests := []struct {
		file string
		want imageSummary
	}{
		{"operator.tar", imageSummary{
			RepoTags: []string{"ghcr.io/pybase/extraction-operator:v0.1.0"}, User: "65532:65532",
			Entrypoint: []string{"/manager"}, Labels: labels("extraction-operator", "v0.1.0"),
			Layers: [][]layerEntry{files("/manager", false)},
		}},
		{"extractor.tar", imageSummary{
			RepoTags: []string{"ghcr.io/pybase/extraction-extractor:v0.1.0"}, User: "65532:65532",
			Entrypoint: []string{"/extractor"}, Labels: labels("extraction-extractor", "v0.1.0"),
			Layers: [][]layerEntry{files("/extractor", true)},
		}},
		{"testextractor.tar", imageSummary{
			RepoTags: []string{"ghcr.io/pybase/extraction-testextractor:v0.1.0"}, User: "65532:65532",
			Entrypoint: []string{"/extractor"}, Labels: labels("extraction-testextractor", "v0.1.0"),
			Layers: [][]layerEntry{files("/extractor", true)},
		}},
		{"pause.tar", imageSummary{
			RepoTags: []string{"registry.k8s.io/pause:3.10"}, User: "65535:65535",
			Entrypoint: []string{"/pause"}, Labels: labels("pause", "3.10"),
			Layers: [][]layerEntry{files("/pause", false)},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			tt.want.ID = listed[tt.file]
			tt.want.OS, tt.want.Arch, tt.want.Created = "linux", runtime.GOARCH, commitTime
			got, content := readBack(t, filepath.Join(out, tt.file))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("the image read back from %s (-want +got):\n%s", tt.file, diff)
			}
			entrypoint := strings.TrimPrefix(tt.want.Entrypoint[0], "/")
			if !strings.HasPrefix(string(content[entrypoint]), "\x7fELF") {
				t.Errorf("%s in %s is not an executable", entrypoint, tt.file)
			}
			if roots, ok := content["etc/ssl/certs/ca-certificates.crt"]; ok {
				checkRoots(t, roots)
			}
		})
	}
}

// readImageList reads images.txt as a map from file to image ID.
func readImageList(t *testing.T, path string) map[string]string {
	t.Helper()
	list, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for line := range strings.Lines(string(list)) {
		fields := strings.Fields(line)
		if len(fields) != 3 {
			t.Fatalf("images.txt line %q is not: file reference image-ID", line)
		}
		ids[fields[0]] = fields[2]
	}
	return ids
}

// readBack reads the image of a tarball with go-containerregistry, as
// `crane push` would, and returns its summary and the files of its layers.
func readBack(t *testing.T, path string) (imageSummary, map[string][]byte) {
	t.Helper()
	manifest, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(path) })
	if err != nil {
		t.Fatal(err)
	}
	if len(manifest) != 1 {
		t.Fatalf("%s holds %d images, want 1", path, len(manifest))
	}
	tag, err := name.NewTag(manifest[0].RepoTags[0])
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(path, &tag)
	if err != nil {
		t.Fatal(err)
	}
	id, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	config, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	summary := imageSummary{
		RepoTags: manifest[0].RepoTags, ID: id.String(),
		OS: config.OS, Arch: config.Architecture, Created: config.Created.UTC(),
		User: config.Config.User, Entrypoint: config.Config.Entrypoint, Labels: config.Config.Labels,
	}
	content := map[string][]byte{}
	for _, layer := range layers {
		entries, files := readLayer(t, layer)
		summary.Layers = append(summary.Layers, entries)
		for name, data := range files {
			content[name] = data
		}
	}
	return summary, content
}

// readLayer lists a layer's entries and returns the content of its files.
func readLayer(t *testing.T, layer v1.Layer) ([]layerEntry, map[string][]byte) {
	t.Helper()
	rc, err := layer.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	entries := []layerEntry{}
	files := map[string][]byte{}
	tr := tar.NewReader(rc)
	for {
		header, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return entries, files
		}
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, layerEntry{
			Name: header.Name, Mode: header.Mode, Uid: header.Uid, Gid: header.Gid, ModTime: header.ModTime.UTC(),
		})
		if header.Typeflag == tar.TypeReg {
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[header.Name] = data
		}
	}
}

// checkRoots checks that a CA bundle holds only certificates, and enough of
// them to be the Mozilla roots.
func checkRoots(t *testing.T, bundle []byte) {
	t.Helper()
	count := 0
	for rest := bundle; ; count++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			if len(strings.TrimSpace(string(rest))) != 0 {
				t.Errorf("the CA bundle has %d bytes that are not PEM", len(rest))
			}
			break
		}
		if _, err := x509.ParseCertificate(block.Bytes); block.Type != "CERTIFICATE" || err != nil {
			t.Errorf("block %d of the CA bundle is a %s that does not parse as a certificate: %v", count, block.Type, err)
		}
	}
	if count < 100 {
		t.Errorf("the CA bundle holds %d certificates; the Mozilla roots are more than 100", count)
	}
}

func TestTheImagesHaveTheNamesConfigDefaultDeploys(t *testing.T) {
	var kustomization struct {
		Images []struct {
			NewName string `json:"newName"`
			NewTag  string `json:"newTag"`
		} `json:"images"`
	}
	readYAML(t, "../../config/manager/kustomization.yaml", &kustomization)
	var class ejv1.ExtractorClass
	readYAML(t, "../../config/default/reference-extractorclass.yaml", &class)
	if len(kustomization.Images) != 1 {
		t.Fatalf("config/manager sets %d images, want the operator's only", len(kustomization.Images))
	}
	want := map[string]string{
		"operator.tar":  kustomization.Images[0].NewName + ":" + kustomization.Images[0].NewTag,
		"extractor.tar": class.Spec.Image,
	}
	got := map[string]string{}
	for _, spec := range images {
		if _, ok := want[spec.file]; ok {
			got[spec.file] = spec.reference
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the images' references against what config/default deploys (-want +got):\n%s", diff)
	}
}

func readYAML(t *testing.T, path string, into any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, into); err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
}
