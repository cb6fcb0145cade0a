"""``ottex serve``: a local web app for artists (one page, live progress, a gallery of this server's runs).

The pieces, each usable without the others:

- :mod:`~ottex.app.web.uploads`: uploaded images, bounded in bytes and pixels, decoded with the loader of the
  command line, stored under the work folder with names the server chooses;
- :mod:`~ottex.app.web.forms`: the page's form made from the method registry (options, defaults, help texts)
  and the settings of a run checked and turned into a :class:`~ottex.exec.local.Job`;
- :mod:`~ottex.app.web.jobs`: the job queue (one run at a time per device) on the local executor, with
  progress (elapsed time, ETA, preview images), cancelling and the results on disk;
- :mod:`~ottex.app.web.server`: the Starlette application (needs the ``web`` extra:
  ``pip install "ottex[web]"``) and the page in ``static/`` (plain HTML, CSS and JavaScript, no build step).
"""
