complete --keep-order --exclusive --command lineage --arguments "(COMPLETE=fish lineage -- (commandline --current-process --tokenize --cut-at-cursor) (commandline --current-token))"
