"""FAQ retrieval: `index.FAQIndex` (build / search / persist / load), with `lexical` (analysis + BM25),
`calibration` (one comparable score per hit) and `background` (out-of-scope questions used to calibrate)."""
