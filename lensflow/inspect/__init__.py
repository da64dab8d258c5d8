"""After the scan: look at the candidates, grade them, agree on them, share them.

`ranked` reads a scan folder's candidates and their cutouts, `images` draws them as PNG,
`grades` keeps every grade in a database (SQLite in the scan folder, or any SQLAlchemy URL),
`consensus` turns graders' grades into one per candidate, `exports` writes graded tables and a
Zooniverse subject set, `gallery` a static HTML page, and `app` serves the web app that
`lensflow inspect` runs on 127.0.0.1.
"""
