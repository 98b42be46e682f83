"""Analysis of replay event logs: DuckDB views over run directories (`views`), figures
(`figures`), the HTML + Markdown report (`report`) and their commands (`cli`: `aurora sql`,
`aurora report`)."""
