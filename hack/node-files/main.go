// Command node-files serves a directory over HTTP for `make dev
// DEV_NODE=real`, so that the real extractor on the real node fetches real
// files (cmd/extractor/testdata) through the Pods' bridge:
//
//	go run ./hack/node-files -dir cmd/extractor/testdata -listen 10.88.0.1:18080
//
// The standard library's file server does the work; this only names the
// directory and the address.
package main

import (
	"flag"
	"log"
	"net/http"
	"time"
)

func main() {
	dir := flag.String("dir", "cmd/extractor/testdata", "the directory to serve")
	listen := flag.String("listen", "10.88.0.1:18080", "the address to listen on: the Pods' bridge's gateway")
	flag.Parse()
	server := &http.Server{Addr: *listen, Handler: http.FileServer(http.Dir(*dir)), ReadHeaderTimeout: 10 * time.Second}
	log.Printf("serving %s on http://%s", *dir, *listen)
	log.Fatal(server.ListenAndServe())
}
