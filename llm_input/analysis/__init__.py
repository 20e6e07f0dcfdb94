"""Analysis: reads run folders (never trains) and turns them into tables and figures."""
