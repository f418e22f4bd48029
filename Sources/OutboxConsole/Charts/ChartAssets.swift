/// `/static/charts.css`: how a chart figure sits in a page (``ChartRenderer``'s classes), and
/// `.figures`, a `<dl>` of headline numbers shown above charts, and `table.nowrap` (a wide table of
/// numbers whose cells never wrap; its `.table-wrap` scrolls instead). The SVG
/// carries its own colours as presentation attributes; text and axes take the page's colour
/// (`currentColor`).
enum ChartAssets {
    static let stylesheet = ConsoleAsset(name: "charts.css", contentType: "text/css; charset=utf-8", body: """
        .figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(9rem, 1fr)); gap: .5rem; margin: .75rem 0; }
        .figures div { border: 1px solid var(--line, #d0d7de); border-radius: 6px; padding: .4rem .75rem; background: var(--panel, #f6f8fa); }
        .figures dt { font-size: .85rem; color: var(--muted, #57606a); }
        .figures dd { margin: 0; font-size: 1.4rem; font-weight: 600; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
        .chart-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 30rem), 1fr)); gap: 1rem 1.5rem; }
        figure.chart { margin: 0 0 1rem; min-width: 0; }
        figure.chart figcaption { font-weight: 600; margin-bottom: .25rem; }
        svg.chart-svg { display: block; width: 100%; height: auto; max-height: 22rem; overflow: visible; }
        .chart-legend { list-style: none; display: flex; flex-wrap: wrap; gap: .25rem 1rem; margin: .25rem 0; padding: 0; font-size: .9rem; }
        .chart-legend svg { vertical-align: -2px; }
        .chart-data summary { cursor: pointer; color: var(--accent, #0a58ca); margin: .25rem 0; }
        .chart-data table { font-size: .9rem; }
        table.nowrap th, table.nowrap td { white-space: nowrap; }
        .chart-data caption { text-align: left; font-weight: 600; padding: .25rem 0; }
        """)
}
