// dashcheck decodes Grafana dashboard JSON files strictly into the Grafana Foundation SDK's
// dashboard types (github.com/grafana/grafana-foundation-sdk/go, Apache-2.0; never the AGPL
// Grafana server): an unknown field, a missing required one or a wrong type anywhere is an
// error, panel options and field config included. Only the panel types registered below have
// strict option types here, so a panel of any other type is refused too (rows excepted).
// Prometheus targets decode into the SDK's Prometheus query; the Redis data source has no SDK
// type (its targets stay maps: tests/operator_infra checks them against the plugin).
//
// Usage: dashcheck FILE...; exit 1 on any error.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/grafana/grafana-foundation-sdk/go/barchart"
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/text"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

func register() {
	rt := cog.NewRuntime()
	rt.RegisterPanelcfgVariant(barchart.VariantConfig())
	rt.RegisterPanelcfgVariant(stat.VariantConfig())
	rt.RegisterPanelcfgVariant(text.VariantConfig())
	rt.RegisterPanelcfgVariant(timeseries.VariantConfig())
	rt.RegisterDataqueryVariant(prometheus.VariantConfig())
}

func check(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var d dashboard.Dashboard
	if err := d.UnmarshalJSONStrict(raw); failed(err) {
		return err
	}
	for _, p := range d.Panels {
		if p.Panel == nil {
			continue // a row
		}
		if _, ok := cog.ConfigForPanelcfgVariant(p.Panel.Type); !ok {
			return fmt.Errorf("panel %q: type %q has no strict decoder here", title(p.Panel), p.Panel.Type)
		}
	}
	fmt.Printf("%s: ok (%d panels)\n", path, len(d.Panels))
	return nil
}

// The SDK returns its error list as an error even when the list is empty.
func failed(err error) bool {
	var list cog.BuildErrors
	return err != nil && !(errors.As(err, &list) && len(list) == 0)
}

func title(p *dashboard.Panel) string {
	if p.Title != nil {
		return *p.Title
	}
	return ""
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: dashcheck DASHBOARD.json...")
		os.Exit(2)
	}
	register()
	failed := false
	for _, path := range os.Args[1:] {
		if err := check(path); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}
