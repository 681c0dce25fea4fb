package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// releaseVersion is the version of the operator's and the extractors'
// images: the tag config/default deploys.
const releaseVersion = "v0.1.0"

// nonRoot is the numeric user the images run as: runAsNonRoot can only check
// a numeric user, and the restricted Pods run as 65532.
const nonRoot = "65532:65532"

// imageSpec is one image: a static Go binary on an empty base.
type imageSpec struct {
	// file is the tarball's name in the output directory.
	file string
	// reference is the name and tag the tarball carries.
	reference string
	// title and version are the image's OCI title and version labels.
	title, version string
	// pkg is the import path of the binary's main package.
	pkg string
	// entrypoint is where the binary lies in the image, and the entrypoint.
	entrypoint string
	// user is the config's numeric user:group.
	user string
	// caRoots adds the CA roots at caRootsPath, for a program that talks
	// https.
	caRoots bool
}

// images are the images `make images` builds.
var images = []imageSpec{
	{
		file: "operator.tar", reference: "ghcr.io/pybase/extraction-operator:" + releaseVersion,
		title: "extraction-operator", version: releaseVersion,
		pkg: module + "/cmd", entrypoint: "/manager", user: nonRoot,
	},
	{
		file: "extractor.tar", reference: "ghcr.io/pybase/extraction-extractor:" + releaseVersion,
		title: "extraction-extractor", version: releaseVersion,
		pkg: module + "/cmd/extractor", entrypoint: "/extractor", user: nonRoot, caRoots: true,
	},
	{
		// A test-only extractor for the real-node tests: it allocates memory
		// or crashes on request, which the reference extractor cannot.
		file: "testextractor.tar", reference: "ghcr.io/pybase/extraction-testextractor:" + releaseVersion,
		title: "extraction-testextractor", version: releaseVersion,
		pkg: module + "/test/images/testextractor", entrypoint: "/extractor", user: nonRoot, caRoots: true,
	},
	{
		// The sandbox image containerd's CRI runs first in every Pod, under
		// the name it looks for. 65535 is the user of the upstream image.
		file: "pause.tar", reference: "registry.k8s.io/pause:3.10",
		title: "pause", version: "3.10",
		pkg: module + "/test/images/pause", entrypoint: "/pause", user: "65535:65535",
	},
}

const (
	module = "github.com/pybase/extraction-operator"
	// caRootsPath is where Go's crypto/x509 looks for the system's roots
	// first on Linux.
	caRootsPath = "/etc/ssl/certs/ca-certificates.crt"
)

// builtImage is an image written to the output directory.
type builtImage struct {
	file, reference string
	// id is the image ID: the digest of its config.
	id v1.Hash
}

// buildImages compiles the binaries of specs for linux/arch, writes each
// image's tarball to out and lists them in out/images.txt.
func buildImages(ctx context.Context, specs []imageSpec, out, arch string, source source) ([]builtImage, error) {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("making the output directory: %w", err)
	}
	binaries, err := os.MkdirTemp("", "images-")
	if err != nil {
		return nil, fmt.Errorf("making a directory for the binaries: %w", err)
	}
	defer os.RemoveAll(binaries)

	var built []builtImage
	var list strings.Builder
	for _, spec := range specs {
		binary := filepath.Join(binaries, strings.TrimSuffix(spec.file, ".tar"))
		if err := goBuild(ctx, spec.pkg, binary, arch); err != nil {
			return nil, err
		}
		img, err := assemble(spec, binary, arch, source)
		if err != nil {
			return nil, fmt.Errorf("assembling %s: %w", spec.reference, err)
		}
		id, err := writeTarball(filepath.Join(out, spec.file), spec.reference, img)
		if err != nil {
			return nil, fmt.Errorf("writing %s: %w", spec.reference, err)
		}
		built = append(built, builtImage{file: spec.file, reference: spec.reference, id: id})
		fmt.Fprintf(&list, "%s %s %s\n", spec.file, spec.reference, id)
	}
	if err := writeFileAtomically(filepath.Join(out, "images.txt"), func(path string) error {
		return os.WriteFile(path, []byte(list.String()), 0o644)
	}); err != nil {
		return nil, fmt.Errorf("writing the list of images: %w", err)
	}
	return built, nil
}

// goBuild compiles pkg into a static binary for linux/arch. -trimpath and
// -buildvcs=false keep the build machine's paths and the checkout's state
// out of the binary, so that it depends on the sources and the toolchain
// only; the revision is in the image's labels instead.
func goBuild(ctx context.Context, pkg, binary, arch string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", binary, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building %s: %w", pkg, err)
	}
	return nil
}

// assemble puts the binary, and the CA roots if the spec asks for them, in
// one layer on an empty base, with the config the spec asks for.
func assemble(spec imageSpec, binary, arch string, source source) (v1.Image, error) {
	program, err := os.ReadFile(binary)
	if err != nil {
		return nil, fmt.Errorf("reading the binary: %w", err)
	}
	files := []layerFile{{path: spec.entrypoint, mode: 0o755, content: program}}
	if spec.caRoots {
		files = append(files, layerFile{path: caRootsPath, mode: 0o644, content: caRootsPEM()})
	}
	layer, err := newLayer(files, source.time)
	if err != nil {
		return nil, err
	}

	base, err := empty.Image.ConfigFile()
	if err != nil {
		return nil, err
	}
	config := base.DeepCopy()
	config.OS = "linux"
	config.Architecture = arch
	config.Created = v1.Time{Time: source.time}
	config.Config = v1.Config{
		User:       spec.user,
		Entrypoint: []string{spec.entrypoint},
		WorkingDir: "/",
		Labels: map[string]string{
			"org.opencontainers.image.title":    spec.title,
			"org.opencontainers.image.version":  spec.version,
			"org.opencontainers.image.source":   source.url,
			"org.opencontainers.image.revision": source.revision,
			"org.opencontainers.image.created":  source.time.Format("2006-01-02T15:04:05Z07:00"),
		},
	}
	img, err := mutate.ConfigFile(empty.Image, config)
	if err != nil {
		return nil, err
	}
	return mutate.Append(img, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: source.time},
			CreatedBy: "go build ." + strings.TrimPrefix(spec.pkg, module) + " as " + spec.entrypoint,
		},
	})
}

// writeTarball writes img, tagged reference, as a tarball at path and
// returns its image ID.
func writeTarball(path, reference string, img v1.Image) (v1.Hash, error) {
	tag, err := name.NewTag(reference, name.StrictValidation)
	if err != nil {
		return v1.Hash{}, err
	}
	id, err := img.ConfigName()
	if err != nil {
		return v1.Hash{}, err
	}
	return id, writeFileAtomically(path, func(tmp string) error {
		return tarball.WriteToFile(tmp, tag, img)
	})
}

// writeFileAtomically lets write make the file at a temporary path of its
// own beside path and renames it into place, so that an interrupted build,
// or two at once into the same directory, leaves no half-written tarball
// for a node to import.
func writeFileAtomically(path string, write func(tmp string) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if err := f.Close(); err != nil {
		return err
	}
	if err := write(tmp); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}
