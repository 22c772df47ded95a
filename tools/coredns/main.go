// CoreDNS with only the plugins the test node's cluster DNS uses: a smaller, faster build than
// the full set. The imports and the list do what the generated core/plugin/zplugin.go and
// core/dnsserver/zdirectives.go do for every plugin; the list keeps plugin.cfg's order, which
// is the order CoreDNS runs plugins in.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/ready"
)

var directives = []string{"bind", "ready", "errors", "kubernetes"}

func init() { dnsserver.Directives = directives }

func main() { coremain.Run() }
