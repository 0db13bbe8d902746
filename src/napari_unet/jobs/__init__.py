"""Jobs: what the command line and the widgets both do, Qt-free and argparse-free.

:mod:`.finetune` — fine-tune with a budget (its defaults, the run with previews, the model
file); :mod:`.files` — segment image files into their outputs (names, summary rows,
probabilities); :mod:`.layers` — segment images held in memory (tile previews, batches,
where their labels are saved). The front ends only map options to a config and events to
a display.
"""
