"""The node side: the daemon every experiment node runs and its pipeline
(serializer, scheduler, dispatcher), its controller link and its reports."""
