"""Reports: RESULTS.md and report.html of a scoring folder, figures, ESPnet's scoring files and the
listening report of csmvanet-enhance --report.
"""
