import { useEffect, useState } from 'react';
import Architecture from './Architecture.jsx';
import Transactions from './Transactions.jsx';

// Two views, as in the workshop: the architecture page and the database page.
// Hash routing (#/ and #/db) keeps nginx's job to serving files.
const VIEWS = {
  '#/': { title: 'Home', Component: Architecture },
  '#/db': { title: 'DB Demo', Component: Transactions },
};

function currentView() {
  return VIEWS[window.location.hash] ? window.location.hash : '#/';
}

export default function App() {
  const [view, setView] = useState(currentView);

  useEffect(() => {
    const onHashChange = () => setView(currentView());
    window.addEventListener('hashchange', onHashChange);
    return () => window.removeEventListener('hashchange', onHashChange);
  }, []);

  const { Component } = VIEWS[view];
  return (
    <>
      <header className="topbar">
        <span className="brand">Three-tier web app</span>
        <nav>
          {Object.entries(VIEWS).map(([hash, { title }]) => (
            <a key={hash} href={hash} className={hash === view ? 'active' : undefined}>
              {title}
            </a>
          ))}
        </nav>
      </header>
      <main>
        <Component />
      </main>
    </>
  );
}
