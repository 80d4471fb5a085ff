"""Corpus specs -> datasets, bag/replay sampling (pure, seeded, manifests), task folders, suite.

Public entry points: spec.load_corpus_spec, corpus.load_corpus, sampler.sample_bags,
sampler.select_rows, taskfolder.validate_task_folder, suite.build_suite.
"""
