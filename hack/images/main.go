// Command images builds the project's container images without a Docker
// engine and without a registry (`make images`):
//
//	go run ./hack/images -out bin/images
//
// It compiles each image's program as a static binary (CGO_ENABLED=0,
// -trimpath) and puts it, as the only layer, on an empty base with
// go-containerregistry, then writes each image as a tarball that `ctr images
// import` and `docker load` read:
//
//	operator.tar       ghcr.io/pybase/extraction-operator:v0.1.0      /manager    (./cmd)
//	extractor.tar      ghcr.io/pybase/extraction-extractor:v0.1.0     /extractor  (./cmd/extractor)
//	testextractor.tar  ghcr.io/pybase/extraction-testextractor:v0.1.0 /extractor  (./test/images/testextractor)
//	pause.tar          registry.k8s.io/pause:3.10                     /pause      (./test/images/pause)
//
// The operator's and the reference extractor's names are the ones
// config/default deploys. images.txt beside them has one line per image:
// the tarball's file name, the reference, and the image ID (the digest of
// its config), separated by spaces. The image ID is what `docker images`,
// `crictl images` and a Pod's status show once a tarball is imported; the
// manifest's digest is not recorded because `ctr images import` and `docker
// load` write a manifest of their own.
//
// The images are reproducible: every time in them (the config's created
// time, the history's, the files' modification times) is the commit's time,
// and the layer is written in a fixed order with fixed owners, so the same
// commit built with the same Go toolchain gives the same image IDs. The
// labels say where an image comes from (org.opencontainers.image.source,
// .revision, .version, .title, .created); a build from a tree with
// uncommitted changes has a revision ending in "-dirty".
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"runtime"
	"syscall"
)

func main() {
	out := flag.String("out", "bin/images", "the directory to write the image tarballs and images.txt to")
	arch := flag.String("arch", runtime.GOARCH, "the images' architecture (GOARCH); the OS is linux")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	source, err := sourceOf(ctx)
	if err != nil {
		log.Fatalf("reading the commit to label the images with: %v", err)
	}
	built, err := buildImages(ctx, images, *out, *arch, source)
	if err != nil {
		log.Fatal(err)
	}
	for _, image := range built {
		fmt.Printf("%s/%s %s %s\n", *out, image.file, image.reference, image.id)
	}
}
