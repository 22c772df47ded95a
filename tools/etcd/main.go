// Command etcd is upstream etcd's server, built from the Go module proxy.
// go.etcd.io/etcd/server/v3 has replace lines of its own, so `go install` of it fails;
// as a dependency of this module its requirements resolve normally.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
