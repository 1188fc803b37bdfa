"""What the devices emit: batches of reads, and the table that interns EPCs into subjects."""
