"""One module per workflow stage, named like its rules/<stage>.smk: the functions its rules' scripts
call, each taking paths and the typed settings the rule resolved (never the config). Stages use the
algorithm modules and the file formats below them; no stage imports another."""
