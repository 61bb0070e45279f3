"""A run request becomes a process: workspace (git), venvs, command lines, the process itself."""
