package main

import (
	"sort"
	"time"

	"imageapid/daemon/config"
	"imageapid/ui"
)

// systemInfo gathers GET /v1/system, the console's system page, from the
// model runtime, the publisher, the metrics and the configuration the
// daemon started with.
func systemInfo(a *app, ap *appliance, cfg config.Config, started time.Time) func() (ui.System, error) {
	return func() (ui.System, error) {
		tree, err := ui.ConfigTree(cfg)
		if err != nil {
			return ui.System{}, err
		}
		s := ui.System{
			Version:   version,
			StartedAt: started.UTC(),
			UptimeS:   time.Since(started).Seconds(),
			Cameras:   ap.cameras.States(),
			Config:    tree,
		}
		delegates := a.runtime.Delegates()
		inferences := a.metrics.Inferences()
		for _, info := range a.runtime.Manifest() {
			m := ui.ModelStatus{Name: info.Name, File: info.File, Precision: info.Precision}
			if info.Build != nil && info.Build.Precision != "" && info.Build.Precision != info.Precision {
				m.PrecisionNote = info.Notes
			}
			if st, ok := delegates[info.Name]; ok {
				m.Loaded = true
				m.Requested, m.Delegate, m.Fallback = st.Requested, st.Actual, st.Fallback
				m.Nodes, m.DelegatedNodes = st.Nodes, st.DelegatedNodes
			}
			if inf, ok := inferences[info.Name]; ok {
				m.Inferences, m.InferenceMeanS = inf.Count, inf.Mean.Seconds()
			}
			s.Models = append(s.Models, m)
		}
		sort.Slice(s.Models, func(i, j int) bool { return s.Models[i].Name < s.Models[j].Name })
		s.MQTT.Enabled = ap.pub != nil
		if ap.pub != nil {
			st := ap.pub.Stats()
			s.MQTT.Connected, s.MQTT.QueueDepth, s.MQTT.QueueBytes = st.Connected, st.QueueDepth, st.QueueBytes
			s.MQTT.Delivered, s.MQTT.Dropped = st.Delivered, st.Dropped
			s.MQTT.Broker = cfg.MQTT.URL
			if ap.broker != nil {
				s.MQTT.Broker = "embedded " + ap.broker.URL()
			}
		}
		for _, r := range a.metrics.Routes() {
			s.HTTP = append(s.HTTP, ui.RouteStats{Route: r.Route, Requests: r.Requests,
				ClientErrors: r.ClientErrors, ServerErrors: r.ServerErrors,
				MeanS: r.Mean.Seconds(), P50S: r.P50.Seconds(), P95S: r.P95.Seconds()})
		}
		return s, nil
	}
}
