/// `/static/console.css`: the layout's styles. Readable at 1280 px and at phone width (the menu wraps,
/// tables scroll sideways in `.table-wrap`), visible focus, contrast above WCAG AA. Areas add their own
/// asset for their own rules.
///
/// Classes for pages: `.table-wrap` (around a wide table), `.actions` (a row of buttons/forms),
/// `.danger` (a destructive button), `.notice`, `.error`, `.muted`, `.badge` with `.ok`/`.warn`/`.bad`,
/// `.cards` with `.card` (summary tiles), `.form-grid` (label/field pairs), `button.link`,
/// `.visually-hidden` (a label for screen readers only).
enum Stylesheet {
    static let asset = ConsoleAsset(name: "console.css", contentType: "text/css; charset=utf-8", body: css)

    static let css = """
        :root { --fg: #1b1f24; --muted: #57606a; --bg: #ffffff; --panel: #f6f8fa; --line: #d0d7de;
                --accent: #0a58ca; --ok: #116329; --warn: #7d4e00; --bad: #a40e26; --focus: #ffbf47; }
        * { box-sizing: border-box; }
        html { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; font-size: 16px; line-height: 1.45;
               color: var(--fg); background: var(--bg); }
        body { margin: 0; }
        a { color: var(--accent); }
        :focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
        .skip-link { position: absolute; left: -10000px; top: 0; background: var(--fg); color: #fff; padding: .5rem 1rem; z-index: 10; }
        .skip-link:focus { left: 0; }
        header.top { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem 1.5rem; padding: .6rem 1.25rem;
                     background: #24292f; color: #fff; }
        header.top a { color: #fff; }
        .brand { font-weight: 700; text-decoration: none; }
        nav ul { list-style: none; display: flex; flex-wrap: wrap; gap: .25rem 1rem; margin: 0; padding: 0; }
        nav a { text-decoration: none; padding: .25rem 0; border-bottom: 3px solid transparent; }
        nav a[aria-current="page"] { border-bottom-color: var(--focus); font-weight: 600; }
        .who { margin-left: auto; display: flex; gap: .75rem; align-items: center; }
        .who .role { color: #c9d1d9; }
        .who form { margin: 0; }
        header.top button.link { color: #fff; }
        main { padding: 1rem 1.25rem 3rem; max-width: 1400px; }
        main:focus { outline: none; }
        h1 { font-size: 1.5rem; margin: .5rem 0 1rem; }
        h2 { font-size: 1.2rem; margin: 1.5rem 0 .5rem; }
        table { border-collapse: collapse; width: 100%; font-size: .95rem; }
        th, td { text-align: left; padding: .4rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
        th { background: var(--panel); font-weight: 600; }
        td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
        .table-wrap { overflow-x: auto; }
        label { font-weight: 600; display: block; margin-bottom: .2rem; }
        input, select, textarea, button { font: inherit; }
        input[type=text], input[type=password], input[type=search], input[type=number], input[type=datetime-local],
        input[type=date], select, textarea { padding: .4rem .5rem; border: 1px solid #8c959f; border-radius: 4px;
                     min-width: 12rem; max-width: 100%; background: #fff; color: var(--fg); }
        button, .button { padding: .4rem .9rem; border-radius: 4px; border: 1px solid #8c959f; background: var(--panel);
                          color: var(--fg); cursor: pointer; text-decoration: none; display: inline-block; }
        button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
        button.danger { background: var(--bad); border-color: var(--bad); color: #fff; }
        button.link { background: none; border: none; padding: 0; text-decoration: underline; color: var(--accent); }
        .actions { display: flex; flex-wrap: wrap; gap: .5rem; align-items: flex-end; margin: .75rem 0; }
        .actions form { margin: 0; }
        .form-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(14rem, 1fr)); gap: .75rem 1rem;
                     align-items: end; margin: .75rem 0; }
        .notice { background: #dafbe1; border: 1px solid #4ac26b; padding: .5rem .75rem; border-radius: 4px; }
        .error { background: #ffebe9; border: 1px solid #ff8182; padding: .5rem .75rem; border-radius: 4px; }
        .muted { color: var(--muted); }
        .badge { display: inline-block; padding: 0 .45rem; border-radius: 999px; font-size: .85rem; border: 1px solid var(--line); }
        .badge.ok { color: var(--ok); border-color: var(--ok); }
        .badge.warn { color: var(--warn); border-color: var(--warn); }
        .badge.bad { color: var(--bad); border-color: var(--bad); }
        .cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(15rem, 1fr)); gap: 1rem; margin: 1rem 0; padding: 0; list-style: none; }
        .card { border: 1px solid var(--line); border-radius: 6px; padding: .75rem 1rem; background: var(--panel); }
        .card h2 { margin-top: 0; }
        .visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
        .sign-in { max-width: 24rem; }
        .sign-in p { margin: 0 0 1rem; }
        .sign-in input { width: 100%; }
        @media (max-width: 640px) {
          header.top { padding: .5rem .75rem; }
          .who { margin-left: 0; }
          main { padding: .75rem .75rem 2rem; }
          th, td { padding: .35rem .4rem; }
          input[type=text], input[type=password], select, textarea { min-width: 0; width: 100%; }
        }
        """
}
