"""The students' view in the browser (Solara, Mesa's visualisation)."""
