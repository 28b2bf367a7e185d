"""What happens for each input: slash command, button click, relayed event, timer."""
