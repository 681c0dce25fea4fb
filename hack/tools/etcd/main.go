// Command etcd is etcd's own server entry point, built here because its
// release binaries cannot be downloaded on every machine that runs our tests.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
