package main

import (
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// plotRSS draws peak RSS against output pixels, one line per model and
// mode, and writes it as a PNG.
func plotRSS(path string, rs []result) error {
	p := plot.New()
	p.Title.Text = "Peak RSS against output size (Upsample Guidance, one process per point)"
	p.X.Label.Text = "output size (pixels per image, log scale)"
	p.Y.Label.Text = "peak RSS (MiB)"
	p.X.Scale = plot.LogScale{}
	var ticks []plot.Tick
	for _, r := range rs {
		if r.Mode != modeBase {
			ticks = append(ticks, plot.Tick{Value: float64(r.Pixels), Label: fmt.Sprintf("%d²", r.Side)})
		}
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	colors := map[string]color.Color{
		modelFashion: color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
		modelLDM:     color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	}
	for _, model := range allModels {
		for _, mode := range runModes {
			var pts plotter.XYs
			for _, r := range rs {
				if r.Model == model && r.Mode == mode {
					pts = append(pts, plotter.XY{X: float64(r.Pixels), Y: mib(r.PeakRSS)})
				}
			}
			if len(pts) == 0 {
				continue
			}
			l, s, err := plotter.NewLinePoints(pts)
			if err != nil {
				return err
			}
			l.Color, s.Color = colors[model], colors[model]
			if mode == modeTiled {
				l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
				s.Shape = draw.BoxGlyph{}
			} else {
				s.Shape = draw.CircleGlyph{}
			}
			p.Add(l, s)
			p.Legend.Add(fmt.Sprintf("%s, %s", model, mode), l, s)
		}
	}
	return p.Save(8*vg.Inch, 5*vg.Inch, path)
}
