"""What the devices emit: batches of reads, and the EPC -> subject table with the kernels that
take a port read's reads into the pipeline's columns."""
