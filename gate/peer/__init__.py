"""Gates that tell each other on the venue LAN (docs/design.md section 6): each gate serves its
own admissions to the event's other gates and follows theirs, so a ticket admitted at one door
is refused at the next within a fraction of a second while syncd is out of reach."""
